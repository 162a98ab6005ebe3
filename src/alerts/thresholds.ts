/**
 * The alert model: for each threshold of the `alerts.thresholds` config section, what is measured,
 * as a PromQL expression for the rendered rules and as a computation on the sidecar's own recorder
 * for its own evaluation. Both read the same metrics, and both compare with the same configured
 * levels, so the two cannot tell different stories.
 */
import type { ThresholdKey, ThresholdsConfig } from '../config/alerts.ts';
import { parsePrometheusDuration } from '../config/alerts.ts';
import { census, pool, probe, proxy, proxyPool, proxyRouting, query, sidecar } from '../metrics/catalogue.ts';
import type { MetricDefinition } from '../metrics/definitions.ts';
import type { Measured, MetricReader } from './history.ts';
import { humanize, humanizeDuration, humanizePercentage } from './template.ts';

export type Severity = 'warning' | 'critical';
export const SEVERITIES: readonly Severity[] = ['warning', 'critical'];

/** How a level is written in descriptions. */
export type LevelUnit = 'seconds' | 'ratio' | 'count' | 'perSecond';

export interface ExpressionContext {
  /** Extra label matchers for every metric, e.g. `job="neo4j-pool-sidecar"`, or ''. */
  selector: string;
  /** The threshold's window as a PromQL duration (windowed thresholds only). */
  window: string;
}

export interface AlertDefinition {
  readonly key: ThresholdKey;
  /** Appended to the configured prefix: Neo4jPool + AcquisitionLatencyHigh. */
  readonly nameSuffix: string;
  /** Section anchor in docs/alerts.md. */
  readonly anchor: string;
  readonly summary: string;
  /** Prometheus template; `{{threshold}}` and `{{window}}` are filled in when the rule is rendered. */
  readonly description: string;
  readonly unit: LevelUnit;
  /** Counters whose history the sidecar's own evaluation needs. */
  readonly history: readonly MetricDefinition[];
  /** PromQL giving the value per instance; the rule is `(expr) >= level`. */
  expression(context: ExpressionContext): string;
  /** The same value per instance, from the sidecar's own numbers. */
  measure(reader: MetricReader, windowMs: number): Measured[];
  /**
   * A per-instance amount added to the configured level, matched on all labels (PromQL's one-to-one
   * matching): the rule is `(expr) >= (allowance) + level`, and an instance without one is not
   * evaluated, in the sidecar as in Prometheus. ProbeDown allows each probe its own interval.
   */
  readonly allowance?: {
    expression(context: ExpressionContext): string;
    measure(reader: MetricReader): Measured[];
  };
}

/** `name{a="b",<selector>}`. */
export function selectMetric(name: string, matchers: readonly string[], selector: string): string {
  const all = [...matchers, ...(selector.trim() ? [selector.trim()] : [])];
  return all.length > 0 ? `${name}{${all.join(', ')}}` : name;
}

function labelsWithout(labels: Readonly<Record<string, string>>, drop: readonly string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).filter(([name]) => !drop.includes(name)));
}

function groupKey(labels: Readonly<Record<string, string>>): string {
  return Object.keys(labels)
    .sort()
    .map((name) => `${name}=${labels[name]}`)
    .join('\u0000');
}

/** Sums values per label set after dropping some labels: PromQL's `sum without (...)`. */
function sumWithout(values: readonly Measured[], drop: readonly string[]): Map<string, Measured> {
  const sums = new Map<string, Measured>();
  for (const entry of values) {
    const labels = labelsWithout(entry.labels, drop);
    const key = groupKey(labels);
    sums.set(key, { labels, value: (sums.get(key)?.value ?? 0) + entry.value });
  }
  return sums;
}

const SIDECAR_QUERY_SOURCE = 'sidecar';
/** Client connections the Bolt proxy accepted, by user-agent family (recorded by the proxy). */
const PROXY_CONNECTIONS_OPENED = proxy.clientConnectionsOpened;
const QUERY_LABELS_SUMMED = ['database', 'mode', 'outcome'] as const;

export const ALERT_DEFINITIONS: Readonly<Record<ThresholdKey, AlertDefinition>> = {
  acquisitionLatency: {
    key: 'acquisitionLatency',
    nameSuffix: 'AcquisitionLatencyHigh',
    anchor: 'acquisition-latency',
    summary: 'Getting a Neo4j connection from the pool is slow.',
    description:
      'The acquisition probe took {{ $value | humanizeDuration }} to get a connection from the sidecar pool{{ if $labels.database }} for database {{ $labels.database }}{{ end }} (threshold {{threshold}}).',
    unit: 'seconds',
    history: [],
    expression: ({ selector }) => selectMetric(probe.duration.name, ['probe="acquisition"'], selector),
    measure: (reader) =>
      reader
        .current(probe.duration)
        .filter((series) => series.labels.probe === 'acquisition')
        .map((series) => ({ labels: series.labels, value: series.value })),
  },
  poolUtilization: {
    key: 'poolUtilization',
    nameSuffix: 'UtilizationHigh',
    anchor: 'pool-utilization',
    summary: 'A Neo4j connection pool is nearly exhausted.',
    description:
      'Pool {{ $labels.pool }} to {{ $labels.address }} has {{ $value | humanizePercentage }} of its maximum connections in use (threshold {{threshold}}).',
    unit: 'ratio',
    history: [],
    expression: ({ selector }) =>
      `${selectMetric(pool.inUse.name, [], selector)} / ${selectMetric(pool.max.name, [], selector)}`,
    measure: (reader) => {
      const max = new Map(reader.current(pool.max).map((series) => [groupKey(series.labels), series.value]));
      return reader.current(pool.inUse).flatMap((series) => {
        const limit = max.get(groupKey(series.labels));
        return limit && limit > 0 ? [{ labels: series.labels, value: series.value / limit }] : [];
      });
    },
  },
  pendingAcquisitions: {
    key: 'pendingAcquisitions',
    nameSuffix: 'PendingAcquisitions',
    anchor: 'pending-acquisitions',
    summary: 'Callers are waiting for Neo4j connections.',
    description:
      '{{ $value | humanize }} callers are waiting for a connection from pool {{ $labels.pool }} to {{ $labels.address }} (threshold {{threshold}}).',
    unit: 'count',
    history: [],
    expression: ({ selector }) => selectMetric(pool.acquiring.name, [], selector),
    measure: (reader) =>
      reader.current(pool.acquiring).map((series) => ({ labels: series.labels, value: series.value })),
  },
  acquisitionTimeouts: {
    key: 'acquisitionTimeouts',
    nameSuffix: 'AcquisitionTimeouts',
    anchor: 'acquisition-timeouts',
    summary: 'Neo4j connection acquisitions are timing out.',
    description:
      '{{ $value | humanize }} acquisitions from pool {{ $labels.pool }} to {{ $labels.address }} timed out in the last {{window}} (threshold {{threshold}}).',
    unit: 'count',
    history: [pool.acquisitionTimeouts],
    expression: ({ selector, window }) =>
      `increase(${selectMetric(pool.acquisitionTimeouts.name, [], selector)}[${window}])`,
    measure: (reader, windowMs) =>
      reader.increase(pool.acquisitionTimeouts, windowMs).map(({ labels, value }) => ({ labels, value })),
  },
  queryErrorRatio: {
    key: 'queryErrorRatio',
    nameSuffix: 'QueryErrorsHigh',
    anchor: 'query-errors',
    summary: 'Neo4j queries are failing.',
    description:
      '{{ $value | humanizePercentage }} of the queries from {{ $labels.source }} failed in the last {{window}} (threshold {{threshold}}).',
    unit: 'ratio',
    history: [query.duration],
    expression: ({ selector, window }) => {
      const matchers = [`source!="${SIDECAR_QUERY_SOURCE}"`];
      const failed = selectMetric(`${query.duration.name}_count`, [...matchers, 'outcome="error"'], selector);
      const all = selectMetric(`${query.duration.name}_count`, matchers, selector);
      const summed = `sum without (${QUERY_LABELS_SUMMED.join(', ')})`;
      return `${summed} (rate(${failed}[${window}])) / ${summed} (rate(${all}[${window}]))`;
    },
    measure: (reader, windowMs) => {
      const increases = reader
        .increase(query.duration, windowMs, 'count')
        .filter((entry) => entry.labels.source !== SIDECAR_QUERY_SOURCE);
      const failed = sumWithout(
        increases.filter((entry) => entry.labels.outcome === 'error'),
        QUERY_LABELS_SUMMED,
      );
      const all = sumWithout(increases, QUERY_LABELS_SUMMED);
      return [...failed].flatMap(([key, errors]) => {
        const total = all.get(key)?.value ?? 0;
        return total > 0 ? [{ labels: errors.labels, value: errors.value / total }] : [];
      });
    },
  },
  probeDown: {
    key: 'probeDown',
    nameSuffix: 'ProbeDown',
    anchor: 'probe-down',
    summary: 'A Neo4j probe of the sidecar is failing.',
    description:
      'The {{ $labels.probe }} probe{{ if $labels.database }} of database {{ $labels.database }}{{ end }} has not succeeded for {{ $value | humanizeDuration }} (threshold: its interval plus {{threshold}}).',
    unit: 'seconds',
    history: [],
    expression: ({ selector }) => `time() - ${selectMetric(probe.lastSuccess.name, [], selector)}`,
    measure: (reader) =>
      reader
        .current(probe.lastSuccess)
        .map((series) => ({ labels: series.labels, value: reader.now / 1000 - series.value })),
    // A probe that runs every 20th run (fresh connect: every 5 minutes by default) has not succeeded
    // for up to its interval between healthy runs: the threshold counts from there.
    allowance: {
      expression: ({ selector }) => selectMetric(probe.interval.name, [], selector),
      measure: (reader) =>
        reader.current(probe.interval).map((series) => ({ labels: series.labels, value: series.value })),
    },
  },
  connectionChurn: {
    key: 'connectionChurn',
    nameSuffix: 'ConnectionChurnHigh',
    anchor: 'connection-churn',
    summary: 'Clients open new Neo4j connections at a high rate instead of reusing pooled ones.',
    description:
      '{{ if $labels.user_agent }}Clients of family {{ $labels.user_agent }} opened {{ $value | humanize }} new connections per second through the Bolt proxy{{ else }}The Neo4j server accepted {{ $value | humanize }} new connections per second{{ end }} over the last {{window}} (threshold {{threshold}}).',
    unit: 'perSecond',
    history: [census.connectionsOpened, PROXY_CONNECTIONS_OPENED],
    expression: ({ selector, window }) =>
      `sum without (connector) (rate(${selectMetric(census.connectionsOpened.name, [], selector)}[${window}])) or rate(${selectMetric(PROXY_CONNECTIONS_OPENED.name, [], selector)}[${window}])`,
    measure: (reader, windowMs) => {
      const perSecond = (entries: ReturnType<MetricReader['increase']>, drop: readonly string[]) =>
        [...sumWithout(entries, drop).values()].flatMap(({ labels, value }) => {
          const spanSeconds = entries[0]?.spanSeconds ?? 0;
          return spanSeconds > 0 ? [{ labels, value: value / spanSeconds }] : [];
        });
      return [
        ...perSecond(reader.increase(census.connectionsOpened, windowMs), ['connector']),
        ...perSecond(reader.increase(PROXY_CONNECTIONS_OPENED, windowMs), []),
      ];
    },
  },
  proxyPoolWaiting: {
    key: 'proxyPoolWaiting',
    nameSuffix: 'ProxyPoolWaiting',
    anchor: 'proxy-pool-waiting',
    summary: "Clients are waiting for the Bolt proxy's pooled Neo4j connections.",
    description:
      '{{ $value | humanize }} client connections are waiting for a pooled Neo4j connection in the Bolt proxy (threshold {{threshold}}).',
    unit: 'count',
    history: [],
    expression: ({ selector }) => selectMetric(proxyPool.clientsWaiting.name, [], selector),
    measure: (reader) =>
      reader.current(proxyPool.clientsWaiting).map((series) => ({ labels: series.labels, value: series.value })),
  },
  proxyClientsHeld: {
    key: 'proxyClientsHeld',
    nameSuffix: 'ProxyClientsHeld',
    anchor: 'proxy-clients-held',
    summary: 'The Bolt proxy is holding clients instead of serving them.',
    description:
      '{{ $value | humanize }} client connections are held by the Bolt proxy for reason {{ $labels.reason }} (paused: the proxy is paused; outage: Neo4j cannot be reached; no_writer: cluster routing knows no reachable writer) (threshold {{threshold}}).',
    unit: 'count',
    history: [],
    expression: ({ selector }) => selectMetric(proxyPool.clientsHeld.name, [], selector),
    measure: (reader) =>
      reader.current(proxyPool.clientsHeld).map((series) => ({ labels: series.labels, value: series.value })),
  },
  proxyHoldTimeouts: {
    key: 'proxyHoldTimeouts',
    nameSuffix: 'ProxyHoldTimeouts',
    anchor: 'proxy-hold-timeouts',
    summary: 'Clients held by the Bolt proxy are timing out.',
    description:
      '{{ $value | humanize }} clients held by the Bolt proxy ({{ $labels.reason }}) reached proxy.pooling.holdTimeoutMs and got DatabaseUnavailable in the last {{window}} (threshold {{threshold}}).',
    unit: 'count',
    history: [proxyPool.holds],
    expression: ({ selector, window }) =>
      `increase(${selectMetric(proxyPool.holds.name, ['outcome="timed_out"'], selector)}[${window}])`,
    measure: (reader, windowMs) =>
      reader
        .increase(proxyPool.holds, windowMs)
        .filter((entry) => entry.labels.outcome === 'timed_out')
        .map(({ labels, value }) => ({ labels, value })),
  },
  proxyPaused: {
    key: 'proxyPaused',
    nameSuffix: 'ProxyPausedTooLong',
    anchor: 'proxy-paused',
    summary: 'The Bolt proxy has been paused for a long time.',
    description:
      'The Bolt proxy has been paused for {{ $value | humanizeDuration }} (threshold {{threshold}}): new logins, queries and transactions are held until `neo4j-pool-sidecar resume` or proxy.pooling.maxPauseMs.',
    unit: 'seconds',
    history: [],
    // The timestamp is 0 while not paused: no instance then.
    expression: ({ selector }) => `time() - (${selectMetric(proxyPool.pausedSince.name, [], selector)} > 0)`,
    measure: (reader) =>
      reader
        .current(proxyPool.pausedSince)
        .filter((series) => series.value > 0)
        .map((series) => ({ labels: series.labels, value: reader.now / 1000 - series.value })),
  },
  proxyPauseExpired: {
    key: 'proxyPauseExpired',
    nameSuffix: 'ProxyPauseExpired',
    anchor: 'proxy-pause-expired',
    summary: 'A pause of the Bolt proxy was ended by its maximum, not by a resume.',
    description:
      '{{ $value | humanize }} pauses of the Bolt proxy reached proxy.pooling.maxPauseMs and were ended by the proxy itself in the last {{window}} (threshold {{threshold}}).',
    unit: 'count',
    history: [proxyPool.pausesExpired],
    expression: ({ selector, window }) =>
      `increase(${selectMetric(proxyPool.pausesExpired.name, [], selector)}[${window}])`,
    measure: (reader, windowMs) =>
      reader.increase(proxyPool.pausesExpired, windowMs).map(({ labels, value }) => ({ labels, value })),
  },
  proxyIdleTransactionTimeouts: {
    key: 'proxyIdleTransactionTimeouts',
    nameSuffix: 'ProxyIdleTransactionTimeouts',
    anchor: 'proxy-idle-transaction-timeouts',
    summary: 'Clients left transactions open and idle, and the Bolt proxy closed them.',
    description:
      '{{ $value | humanize }} clients{{ if $labels.user_agent }} of family {{ $labels.user_agent }}{{ end }} sat idle inside a transaction for proxy.idleTransactionTimeoutMs and were closed, their transactions rolled back, in the last {{window}} (threshold {{threshold}}).',
    unit: 'count',
    history: [proxy.idleTransactionTimeouts],
    expression: ({ selector, window }) =>
      `increase(${selectMetric(proxy.idleTransactionTimeouts.name, [], selector)}[${window}])`,
    measure: (reader, windowMs) =>
      reader.increase(proxy.idleTransactionTimeouts, windowMs).map(({ labels, value }) => ({ labels, value })),
  },
  proxyRoutingFailovers: {
    key: 'proxyRoutingFailovers',
    nameSuffix: 'ProxyRoutingFailovers',
    anchor: 'proxy-routing-failovers',
    summary: 'The Bolt proxy keeps routing around failing cluster members.',
    description:
      "{{ $value | humanize }} cluster members{{ if $labels.role }} with role {{ $labels.role }}{{ end }} were dropped from the Bolt proxy's routing tables for failing in the last {{window}} (threshold {{threshold}}).",
    unit: 'count',
    history: [proxyRouting.failovers],
    expression: ({ selector, window }) =>
      `increase(${selectMetric(proxyRouting.failovers.name, [], selector)}[${window}])`,
    measure: (reader, windowMs) =>
      reader.increase(proxyRouting.failovers, windowMs).map(({ labels, value }) => ({ labels, value })),
  },
  longRunningTransactions: {
    key: 'longRunningTransactions',
    nameSuffix: 'LongRunningTransaction',
    anchor: 'long-running-transactions',
    summary: 'A Neo4j transaction has been open for a long time.',
    description:
      'The oldest open transaction on database {{ $labels.database }} has been running for {{ $value | humanizeDuration }} (threshold {{threshold}}).',
    unit: 'seconds',
    history: [],
    expression: ({ selector }) => selectMetric(census.oldestTransaction.name, [], selector),
    measure: (reader) =>
      reader.current(census.oldestTransaction).map((series) => ({ labels: series.labels, value: series.value })),
  },
  credentialsRejected: {
    key: 'credentialsRejected',
    nameSuffix: 'CredentialsRejected',
    anchor: 'credentials-rejected',
    summary: "Neo4j refuses the sidecar's credentials.",
    description:
      'Neo4j has refused the credentials of the sidecar for {{ $value | humanizeDuration }} (threshold {{threshold}}): it is not ready and measures nothing, and any worker given the same password is refused too.',
    unit: 'seconds',
    history: [],
    // The timestamp is 0 while the credentials are not refused: no instance then.
    expression: ({ selector }) => `time() - (${selectMetric(sidecar.credentialsRejectedSince.name, [], selector)} > 0)`,
    measure: (reader) =>
      reader
        .current(sidecar.credentialsRejectedSince)
        .filter((series) => series.value > 0)
        .map((series) => ({ labels: series.labels, value: reader.now / 1000 - series.value })),
  },
};

export const THRESHOLD_KEYS = Object.keys(ALERT_DEFINITIONS) as ThresholdKey[];

export function formatLevel(unit: LevelUnit, level: number): string {
  switch (unit) {
    case 'seconds':
      return humanizeDuration(level);
    case 'ratio':
      return humanizePercentage(level);
    case 'count':
      return humanize(level);
    case 'perSecond':
      return `${humanize(level)}/s`;
  }
}

/** One configured alert: a threshold at one severity. */
export interface AlertRule {
  readonly definition: AlertDefinition;
  readonly name: string;
  readonly severity: Severity;
  readonly level: number;
  readonly forMs: number;
  readonly for: string;
  readonly window: string | undefined;
  readonly windowMs: number;
  /** The description template with threshold and window filled in. */
  readonly description: string;
}

/** The enabled alerts of a thresholds config, in a stable order: threshold, then warning before critical. */
export function configuredAlerts(thresholds: ThresholdsConfig, namePrefix: string): AlertRule[] {
  const rules: AlertRule[] = [];
  for (const key of THRESHOLD_KEYS) {
    const threshold = thresholds[key];
    if (!threshold.enabled) continue;
    const definition = ALERT_DEFINITIONS[key];
    const window = 'window' in threshold ? threshold.window : undefined;
    for (const severity of SEVERITIES) {
      const level = threshold[severity];
      if (level === null) continue;
      rules.push({
        definition,
        name: `${namePrefix}${definition.nameSuffix}`,
        severity,
        level,
        forMs: parsePrometheusDuration(threshold.for),
        for: threshold.for,
        window,
        windowMs: window === undefined ? 0 : parsePrometheusDuration(window),
        description: definition.description
          .replaceAll('{{threshold}}', formatLevel(definition.unit, level))
          .replaceAll('{{window}}', window ?? ''),
      });
    }
  }
  return rules;
}
