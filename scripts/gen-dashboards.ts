/**
 * Generates the Grafana dashboards (dashboards/*.json) from the metric catalogue and the default
 * alert thresholds, and the files the Helm chart derives from code: copies of the dashboards (a
 * chart cannot read files outside its directory), the alert definitions its PrometheusRule is
 * rendered from, and its values schema (whose `config` is the sidecar's config schema).
 *
 *   npm exec tsx scripts/gen-dashboards.ts           write the files
 *   npm exec tsx scripts/gen-dashboards.ts --check   exit 1 when a checked-in file differs
 *
 * Metric names come from src/metrics/catalogue.ts, so a renamed metric breaks this script rather
 * than leaving a dashboard that silently shows nothing. Every query filters on job and instance
 * (and pool / database where the metric has those labels), uses $__rate_interval in rate(), and
 * every panel has a unit and a description: grafana/dashboard-linter's rules, checked in
 * test/deploy/dashboards.test.ts.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { z } from 'zod';
import { ALERT_DEFINITIONS, THRESHOLD_KEYS } from '../src/alerts/index.ts';
import { alertsSection, type ThresholdKey } from '../src/config/alerts.ts';
import { configSchema } from '../src/config/schema.ts';
import { alerts, census, pool, probe, proxy, query, sizing } from '../src/metrics/catalogue.ts';
import type { MetricDefinition } from '../src/metrics/definitions.ts';
import { repoRoot } from './neo4j/local-neo4j.ts';

// ---------------------------------------------------------------------------------------------
// Dashboard model: only the parts of Grafana's JSON model these dashboards use.

type Unit = 'none' | 'Bps' | 'short' | 'percentunit' | 's' | 'ops' | 'cps' | 'bool' | 'bool_yes_no';

interface Target {
  expr: string;
  legendFormat: string;
  /** Instant queries for stat and table panels: one value per series, not a range. */
  instant?: boolean;
  format?: 'time_series' | 'table';
}

interface ThresholdLines {
  warning: number | null;
  critical: number | null;
}

interface PanelSpec {
  type: 'timeseries' | 'stat' | 'table';
  title: string;
  description: string;
  unit: Unit;
  targets: Target[];
  width?: number;
  height?: number;
  /** Alert levels drawn as dashed lines (timeseries) or colour steps (stat). */
  thresholds?: ThresholdLines;
  min?: number;
  max?: number;
  stack?: boolean;
}

interface RowSpec {
  title: string;
  panels: PanelSpec[];
}

type VariableName = 'job' | 'instance' | 'pool' | 'database';

interface DashboardSpec {
  file: string;
  uid: string;
  title: string;
  description: string;
  /** Variables after datasource, job and instance. */
  filters: Array<Extract<VariableName, 'pool' | 'database'>>;
  rows: RowSpec[];
}

// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, resolved by Grafana, not JavaScript
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' } as const;
const TAG = 'neo4j-pool-sidecar';
/** The metric every pool-reporting process exports; variables list the jobs and instances that have it. */
const ANCHOR = pool.max.name;

// ---------------------------------------------------------------------------------------------
// Query building.

/** Default alert levels, read from the config schema so the lines move when the defaults do. */
const thresholds = alertsSection.parse({}).thresholds;

function lines(key: ThresholdKey): ThresholdLines {
  return { warning: thresholds[key].warning, critical: thresholds[key].critical };
}

/** A selector for a metric with the dashboard's filters that apply to it. */
function makeSelect(filters: readonly VariableName[]) {
  return (metric: MetricDefinition, options: { suffix?: string; matchers?: string[] } = {}): string => {
    const matchers = ['job=~"$job"', 'instance=~"$instance"'];
    for (const filter of filters) {
      if ((filter === 'pool' || filter === 'database') && (metric.labelNames as readonly string[]).includes(filter)) {
        matchers.push(`${filter}=~"$${filter}"`);
      }
    }
    matchers.push(...(options.matchers ?? []));
    return `${metric.name}${options.suffix ?? ''}{${matchers.join(', ')}}`;
  };
}

function quantile(q: number, select: string, by: readonly string[]): string {
  return `histogram_quantile(${q}, sum by (${[...by, 'le'].join(', ')}) (rate(${select}[$__rate_interval])))`;
}

// ---------------------------------------------------------------------------------------------
// The dashboards.

function fleet(): DashboardSpec {
  const filters: DashboardSpec['filters'] = ['pool'];
  const select = makeSelect(['job', 'instance', ...filters]);
  const perPod = `count by (instance, pool) (${select(pool.max)})`;
  const timeoutWindow = thresholds.acquisitionTimeouts.window;
  return {
    file: 'neo4j-pool-fleet.json',
    uid: 'neo4j-pool-fleet',
    title: 'Neo4j pools / Fleet overview',
    description:
      'Every Neo4j driver pool the sidecars and instrumented workers report: how many, how full, how long callers wait, and which alerts fire.',
    filters,
    rows: [
      {
        title: 'Fleet',
        panels: [
          {
            type: 'stat',
            title: 'Pods reporting pools',
            description: `Instances (pods) that export ${pool.max.name}: sidecars and instrumented workers.`,
            unit: 'none',
            targets: [
              { expr: `count(count by (instance) (${select(pool.max)}))`, legendFormat: 'pods', instant: true },
            ],
            width: 4,
          },
          {
            type: 'stat',
            title: 'Pools',
            description: 'Distinct (instance, pool) pairs: one per driver instance in each pod.',
            unit: 'none',
            targets: [{ expr: `count(${perPod})`, legendFormat: 'pools', instant: true }],
            width: 4,
          },
          {
            type: 'stat',
            title: 'Connections in use',
            description: pool.inUse.help,
            unit: 'none',
            targets: [{ expr: `sum(${select(pool.inUse)})`, legendFormat: 'in use', instant: true }],
            width: 4,
          },
          {
            type: 'stat',
            title: 'Callers waiting',
            description: `${pool.acquiring.help} Coloured at the pending-acquisitions alert levels.`,
            unit: 'none',
            targets: [{ expr: `sum(${select(pool.acquiring)})`, legendFormat: 'waiting', instant: true }],
            thresholds: lines('pendingAcquisitions'),
            width: 4,
          },
          {
            type: 'stat',
            title: 'Acquisition timeouts',
            description: `${pool.acquisitionTimeouts.help} Total over the dashboard's time range.`,
            unit: 'none',
            targets: [
              {
                expr: `sum(increase(${select(pool.acquisitionTimeouts)}[$__range]))`,
                legendFormat: 'timeouts',
                instant: true,
              },
            ],
            thresholds: { warning: 1, critical: null },
            width: 4,
          },
          {
            type: 'stat',
            title: 'Alerts active',
            description: `${alerts.active.help} The sidecar evaluates the same thresholds as the Prometheus rules.`,
            unit: 'none',
            targets: [{ expr: `sum(${select(alerts.active)})`, legendFormat: 'active', instant: true }],
            thresholds: { warning: 1, critical: null },
            width: 4,
          },
        ],
      },
      {
        title: 'Pools and utilization',
        panels: [
          {
            type: 'timeseries',
            title: 'Pools per pod',
            description:
              'Driver pools each instance reports. More than one or two per pod usually means drivers created per task.',
            unit: 'none',
            targets: [{ expr: `count by (instance) (${perPod})`, legendFormat: '{{instance}}' }],
          },
          {
            type: 'timeseries',
            title: 'Pool utilization',
            description:
              'Connections in use divided by the pool size (maxConnectionPoolSize), per pool and server address. Dashed lines: the pool-utilization alert levels.',
            unit: 'percentunit',
            targets: [
              {
                expr: `${select(pool.inUse)} / ${select(pool.max)}`,
                legendFormat: '{{instance}} {{pool}} {{address}}',
              },
            ],
            thresholds: lines('poolUtilization'),
            min: 0,
            max: 1,
          },
          {
            type: 'timeseries',
            title: 'Connections by state',
            description: 'Pool connections in use, idle and being created, summed over pods and addresses.',
            unit: 'none',
            targets: [
              { expr: `sum by (pool) (${select(pool.inUse)})`, legendFormat: '{{pool}} in use' },
              { expr: `sum by (pool) (${select(pool.idle)})`, legendFormat: '{{pool}} idle' },
              { expr: `sum by (pool) (${select(pool.creating)})`, legendFormat: '{{pool}} creating' },
            ],
            stack: true,
          },
          {
            type: 'timeseries',
            title: 'Callers waiting for a connection',
            description: `${pool.acquiring.help} Dashed lines: the pending-acquisitions alert levels.`,
            unit: 'none',
            targets: [{ expr: select(pool.acquiring), legendFormat: '{{instance}} {{pool}} {{address}}' }],
            thresholds: lines('pendingAcquisitions'),
            min: 0,
          },
          {
            type: 'timeseries',
            title: 'Connections needed vs. pool size',
            description: `${sizing.needed.help}`,
            unit: 'none',
            targets: [
              { expr: `max by (pool) (${select(sizing.needed)})`, legendFormat: '{{pool}} needed' },
              { expr: `max by (pool) (${select(pool.max)})`, legendFormat: '{{pool}} max' },
            ],
            min: 0,
          },
        ],
      },
      {
        title: 'Acquisition',
        panels: [
          {
            type: 'timeseries',
            title: 'Acquisition latency percentiles',
            description: `${pool.acquisitionSeconds.help} Percentiles over all selected pools.`,
            unit: 's',
            targets: [0.5, 0.95, 0.99].map((q) => ({
              expr: quantile(q, select(pool.acquisitionSeconds, { suffix: '_bucket' }), []),
              legendFormat: `p${q * 100}`,
            })),
          },
          {
            type: 'timeseries',
            title: 'Acquisition latency p99 by pool',
            description: 'The 99th percentile of acquisition time per pod and pool: which pool makes callers wait.',
            unit: 's',
            targets: [
              {
                expr: quantile(0.99, select(pool.acquisitionSeconds, { suffix: '_bucket' }), ['instance', 'pool']),
                legendFormat: '{{instance}} {{pool}}',
              },
            ],
          },
          {
            type: 'timeseries',
            title: 'Acquisition probe duration',
            description:
              "How long the sidecar's acquisition probe took to get a connection from its own pool. Dashed lines: the acquisition-latency alert levels.",
            unit: 's',
            targets: [
              {
                expr: select(probe.duration, { matchers: ['probe="acquisition"'] }),
                legendFormat: '{{instance}} {{database}}',
              },
            ],
            thresholds: lines('acquisitionLatency'),
            min: 0,
          },
          {
            type: 'timeseries',
            title: `Acquisition timeouts per ${timeoutWindow}`,
            description: `${pool.acquisitionTimeouts.help} Counted over ${timeoutWindow}, the alert's window. Dashed lines: the acquisition-timeouts alert levels.`,
            unit: 'none',
            targets: [
              {
                expr: `sum by (instance, pool) (increase(${select(pool.acquisitionTimeouts)}[${timeoutWindow}]))`,
                legendFormat: '{{instance}} {{pool}}',
              },
            ],
            thresholds: lines('acquisitionTimeouts'),
            min: 0,
          },
          {
            type: 'timeseries',
            title: 'Failed connection attempts',
            description: pool.failed.help,
            unit: 'cps',
            targets: [
              {
                expr: `sum by (instance, pool) (rate(${select(pool.failed)}[$__rate_interval]))`,
                legendFormat: '{{instance}} {{pool}}',
              },
            ],
            min: 0,
          },
        ],
      },
      {
        title: 'Alerts',
        panels: [
          {
            type: 'timeseries',
            title: 'Alerts active by name',
            description: `${alerts.active.help} One series per alert and severity.`,
            unit: 'none',
            targets: [
              {
                expr: `max by (alert, severity) (${select(alerts.active)})`,
                legendFormat: '{{alert}} ({{severity}})',
              },
            ],
            min: 0,
            width: 24,
          },
        ],
      },
    ],
  };
}

function queries(): DashboardSpec {
  const filters: DashboardSpec['filters'] = ['database'];
  const select = makeSelect(['job', 'instance', ...filters]);
  const count = (matchers: string[] = []) => select(query.duration, { suffix: '_count', matchers });
  const bucket = select(query.duration, { suffix: '_bucket' });
  const perSecond = (selector: string, by: string) => `sum by (${by}) (rate(${selector}[$__rate_interval]))`;
  const errorRatioBy = 'database, mode, outcome';
  return {
    file: 'neo4j-pool-queries.json',
    uid: 'neo4j-pool-queries',
    title: 'Neo4j pools / Queries',
    description:
      'Query rate, latency percentiles and errors by Neo4j status code, from the instrumented drivers and the sidecar.',
    filters,
    rows: [
      {
        title: 'Rate and errors',
        panels: [
          {
            type: 'timeseries',
            title: 'Queries per second by source and outcome',
            description: `Completed queries per second. ${query.duration.help}`,
            unit: 'ops',
            targets: [{ expr: perSecond(count(), 'source, outcome'), legendFormat: '{{source}} {{outcome}}' }],
            stack: true,
          },
          {
            type: 'timeseries',
            title: 'Queries per second by database and mode',
            description: 'Completed queries per second per database and access mode (read or write).',
            unit: 'ops',
            targets: [{ expr: perSecond(count(), 'database, mode'), legendFormat: '{{database}} {{mode}}' }],
            stack: true,
          },
          {
            type: 'timeseries',
            title: 'Query error ratio by source',
            description:
              "Failed queries divided by all queries, per source, the sidecar's own probe queries excluded: the query-errors alert's measure. Dashed lines: its alert levels.",
            unit: 'percentunit',
            targets: [
              {
                expr: `sum without (${errorRatioBy}) (rate(${count(['source!="sidecar"', 'outcome="error"'])}[$__rate_interval])) / sum without (${errorRatioBy}) (rate(${count(['source!="sidecar"'])}[$__rate_interval]))`,
                legendFormat: '{{instance}} {{source}}',
              },
            ],
            thresholds: lines('queryErrorRatio'),
            min: 0,
            max: 1,
          },
          {
            type: 'timeseries',
            title: 'Errors per second by code',
            description: query.errors.help,
            unit: 'ops',
            targets: [{ expr: perSecond(select(query.errors), 'code'), legendFormat: '{{code}}' }],
            stack: true,
          },
          {
            type: 'table',
            title: 'Errors by source, database and code',
            description: `${query.errors.help} Totals over the dashboard's time range.`,
            unit: 'none',
            targets: [
              {
                expr: `sum by (source, database, code) (increase(${select(query.errors)}[$__range]))`,
                legendFormat: '{{source}} {{database}} {{code}}',
                instant: true,
                format: 'table',
              },
            ],
            width: 12,
          },
          {
            type: 'timeseries',
            title: 'Queries in flight',
            description: query.inFlight.help,
            unit: 'none',
            targets: [
              {
                expr: `sum by (instance, source) (${makeSelect(['job', 'instance'])(query.inFlight)})`,
                legendFormat: '{{instance}} {{source}}',
              },
            ],
            min: 0,
          },
        ],
      },
      {
        title: 'Latency',
        panels: [
          {
            type: 'timeseries',
            title: 'Query latency percentiles',
            description: `${query.duration.help} Percentiles from the histogram over all selected queries.`,
            unit: 's',
            targets: [0.5, 0.9, 0.99].map((q) => ({ expr: quantile(q, bucket, []), legendFormat: `p${q * 100}` })),
          },
          {
            type: 'timeseries',
            title: 'Query latency p99 by database',
            description: 'The 99th percentile of query time per database.',
            unit: 's',
            targets: [{ expr: quantile(0.99, bucket, ['database']), legendFormat: '{{database}}' }],
          },
          {
            type: 'timeseries',
            title: 'Query latency p95 by source and mode',
            description: 'The 95th percentile of query time per source (driver, proxy, sidecar) and mode.',
            unit: 's',
            targets: [{ expr: quantile(0.95, bucket, ['source', 'mode']), legendFormat: '{{source}} {{mode}}' }],
          },
          {
            type: 'timeseries',
            title: 'Mean query latency by source',
            description: 'Total query time divided by query count, per source.',
            unit: 's',
            targets: [
              {
                expr: `sum by (source) (rate(${select(query.duration, { suffix: '_sum' })}[$__rate_interval])) / sum by (source) (rate(${count()}[$__rate_interval]))`,
                legendFormat: '{{source}}',
              },
            ],
          },
        ],
      },
    ],
  };
}

function connections(): DashboardSpec {
  const filters: DashboardSpec['filters'] = ['pool', 'database'];
  const select = makeSelect(['job', 'instance', ...filters]);
  const churnWindowNote = 'per second over $__rate_interval';
  return {
    file: 'neo4j-pool-connections.json',
    uid: 'neo4j-pool-connections',
    title: 'Neo4j pools / Connections',
    description:
      'Pool connection lifetimes and churn, Bolt proxy clients, the Neo4j server connection census by client and host, and the sidecar probe results.',
    filters,
    rows: [
      {
        title: 'Pool connection lifetimes and churn',
        panels: [
          {
            type: 'timeseries',
            title: 'Pool connections opened, closed and failed',
            description: `Connections per second. Opened: ${pool.created.help} Closed: ${pool.closed.help} Failed: ${pool.failed.help}`,
            unit: 'cps',
            targets: [
              {
                expr: `sum by (pool) (rate(${select(pool.created)}[$__rate_interval]))`,
                legendFormat: '{{pool}} opened',
              },
              {
                expr: `sum by (pool) (rate(${select(pool.closed)}[$__rate_interval]))`,
                legendFormat: '{{pool}} closed',
              },
              {
                expr: `sum by (pool) (rate(${select(pool.failed)}[$__rate_interval]))`,
                legendFormat: '{{pool}} failed',
              },
            ],
          },
          {
            type: 'timeseries',
            title: 'Connection creation time',
            description: pool.creationSeconds.help,
            unit: 's',
            targets: [0.5, 0.99].map((q) => ({
              expr: quantile(q, select(pool.creationSeconds, { suffix: '_bucket' }), ['pool']),
              legendFormat: `{{pool}} p${q * 100}`,
            })),
          },
          {
            type: 'timeseries',
            title: 'Connection checkout time',
            description: pool.usageSeconds.help,
            unit: 's',
            targets: [0.5, 0.99].map((q) => ({
              expr: quantile(q, select(pool.usageSeconds, { suffix: '_bucket' }), ['pool']),
              legendFormat: `{{pool}} p${q * 100}`,
            })),
          },
        ],
      },
      {
        title: 'Bolt proxy clients',
        panels: [
          {
            type: 'timeseries',
            title: 'Proxy client connections',
            description: proxy.clientConnectionsActive.help,
            unit: 'none',
            targets: [{ expr: select(proxy.clientConnectionsActive), legendFormat: '{{instance}}' }],
            min: 0,
          },
          {
            type: 'timeseries',
            title: 'Proxy client connections opened and closed',
            description: `Client connections per second. Opened: ${proxy.clientConnectionsOpened.help} Closed: ${proxy.clientConnectionsClosed.help}`,
            unit: 'cps',
            targets: [
              {
                expr: `sum by (user_agent) (rate(${select(proxy.clientConnectionsOpened)}[$__rate_interval]))`,
                legendFormat: 'opened {{user_agent}}',
              },
              {
                expr: `sum by (reason) (rate(${select(proxy.clientConnectionsClosed)}[$__rate_interval]))`,
                legendFormat: 'closed {{reason}}',
              },
            ],
          },
          {
            type: 'timeseries',
            title: 'Proxy client connection lifetime',
            description: proxy.clientConnectionLifetime.help,
            unit: 's',
            targets: [0.5, 0.99].map((q) => ({
              expr: quantile(q, select(proxy.clientConnectionLifetime, { suffix: '_bucket' }), ['user_agent']),
              legendFormat: `{{user_agent}} p${q * 100}`,
            })),
          },
          {
            type: 'timeseries',
            title: 'Queries per proxy client connection',
            description: proxy.queriesPerConnection.help,
            unit: 'none',
            targets: [0.5, 0.9].map((q) => ({
              expr: quantile(q, select(proxy.queriesPerConnection, { suffix: '_bucket' }), ['user_agent']),
              legendFormat: `{{user_agent}} p${q * 100}`,
            })),
          },
          {
            type: 'timeseries',
            title: 'Proxy connections rejected and logins refused',
            description: `Per second. Rejected: ${proxy.connectionsRejected.help} Logins refused: ${proxy.authFailures.help}`,
            unit: 'cps',
            targets: [
              {
                expr: `sum by (reason) (rate(${select(proxy.connectionsRejected)}[$__rate_interval]))`,
                legendFormat: 'rejected {{reason}}',
              },
              {
                expr: `sum by (user_agent) (rate(${select(proxy.authFailures)}[$__rate_interval]))`,
                legendFormat: 'login refused {{user_agent}}',
              },
            ],
          },
          {
            type: 'timeseries',
            title: 'Proxy traffic',
            description: proxy.bytes.help,
            unit: 'Bps',
            targets: [
              {
                expr: `sum by (direction) (rate(${select(proxy.bytes)}[$__rate_interval]))`,
                legendFormat: '{{direction}}',
              },
            ],
          },
          {
            type: 'timeseries',
            title: 'Proxy messages by type',
            description: `${proxy.messages.help} Messages per second.`,
            unit: 'ops',
            targets: [
              {
                expr: `sum by (direction, message) (rate(${select(proxy.messages)}[$__rate_interval]))`,
                legendFormat: '{{direction}} {{message}}',
              },
            ],
          },
          {
            type: 'timeseries',
            title: 'Proxy connections by Bolt version',
            description: `${proxy.boltVersions.help} New connections per second.`,
            unit: 'cps',
            targets: [
              {
                expr: `sum by (version) (rate(${select(proxy.boltVersions)}[$__rate_interval]))`,
                legendFormat: 'Bolt {{version}}',
              },
            ],
          },
          {
            type: 'timeseries',
            title: 'Proxy upstream connect time',
            description: proxy.upstreamConnectSeconds.help,
            unit: 's',
            targets: [0.5, 0.99].map((q) => ({
              expr: quantile(q, select(proxy.upstreamConnectSeconds, { suffix: '_bucket' }), ['instance']),
              legendFormat: `{{instance}} p${q * 100}`,
            })),
          },
        ],
      },
      {
        title: 'Server census',
        panels: [
          {
            type: 'timeseries',
            title: 'Server connections by client',
            description: census.connections.help,
            unit: 'none',
            targets: [
              {
                expr: `max by (connector, user_agent_family) (${select(census.connections)})`,
                legendFormat: '{{user_agent_family}} ({{connector}})',
              },
            ],
            stack: true,
          },
          {
            type: 'timeseries',
            title: 'Server connections by client host',
            description: census.clientConnections.help,
            unit: 'none',
            targets: [
              {
                expr: `max by (client_host) (${select(census.clientConnections)})`,
                legendFormat: '{{client_host}}',
              },
            ],
            stack: true,
          },
          {
            type: 'timeseries',
            title: 'New connections per second',
            description: `The connection-churn alert's two measures: connections the Neo4j server accepted (${census.connectionsOpened.help}) and client connections the Bolt proxy accepted, per client family. Shown ${churnWindowNote}; dashed lines: the alert levels.`,
            unit: 'cps',
            targets: [
              {
                expr: `sum without (connector) (rate(${select(census.connectionsOpened)}[$__rate_interval]))`,
                legendFormat: '{{instance}} server',
              },
              {
                expr: `rate(${select(proxy.clientConnectionsOpened)}[$__rate_interval])`,
                legendFormat: '{{instance}} proxy {{user_agent}}',
              },
            ],
            thresholds: lines('connectionChurn'),
            min: 0,
          },
          {
            type: 'timeseries',
            title: 'Server connections by age',
            description: census.connectionsByAge.help,
            unit: 'none',
            targets: [
              {
                expr: `max by (le) (${select(census.connectionsByAge)})`,
                legendFormat: 'at most {{le}} s old',
              },
            ],
          },
          {
            type: 'stat',
            title: 'Census sees every connection',
            description: census.seesAllConnections.help,
            unit: 'bool_yes_no',
            targets: [{ expr: `min(${select(census.seesAllConnections)})`, legendFormat: 'sees all', instant: true }],
            width: 4,
          },
          {
            type: 'timeseries',
            title: 'Oldest open transaction',
            description: `${census.oldestTransaction.help} Dashed lines: the long-running-transaction alert levels.`,
            unit: 's',
            targets: [
              {
                expr: `max by (database) (${select(census.oldestTransaction)})`,
                legendFormat: '{{database}}',
              },
            ],
            thresholds: lines('longRunningTransactions'),
            min: 0,
            width: 10,
          },
          {
            type: 'timeseries',
            title: 'Long-running transactions',
            description: census.longTransactions.help,
            unit: 'none',
            targets: [
              {
                expr: `max by (database) (${select(census.longTransactions)})`,
                legendFormat: '{{database}}',
              },
            ],
            min: 0,
            width: 10,
          },
        ],
      },
      {
        title: 'Probes',
        panels: [
          {
            type: 'timeseries',
            title: 'Probe results',
            description: `${probe.up.help} Per probe and database.`,
            unit: 'bool',
            targets: [{ expr: select(probe.up), legendFormat: '{{instance}} {{probe}} {{database}}' }],
            min: 0,
            max: 1,
          },
          {
            type: 'timeseries',
            title: 'Probe duration',
            description: probe.duration.help,
            unit: 's',
            targets: [{ expr: select(probe.duration), legendFormat: '{{instance}} {{probe}} {{database}}' }],
            min: 0,
          },
          {
            type: 'timeseries',
            title: 'Time since last probe success',
            description: `Now minus ${probe.lastSuccess.name}. Dashed lines: the probe-down alert levels.`,
            unit: 's',
            targets: [
              {
                expr: `time() - ${select(probe.lastSuccess)}`,
                legendFormat: '{{instance}} {{probe}} {{database}}',
              },
            ],
            thresholds: lines('probeDown'),
            min: 0,
          },
          {
            type: 'timeseries',
            title: 'Probe failures by reason',
            description: `${probe.failures.help} Failures per second.`,
            unit: 'ops',
            targets: [
              {
                expr: `sum by (probe, reason) (rate(${select(probe.failures)}[$__rate_interval]))`,
                legendFormat: '{{probe}} {{reason}}',
              },
            ],
            min: 0,
          },
        ],
      },
    ],
  };
}

export const DASHBOARD_SPECS: readonly (() => DashboardSpec)[] = [fleet, queries, connections];

// ---------------------------------------------------------------------------------------------
// Rendering to Grafana JSON.

function variable(name: VariableName, filtersBefore: readonly VariableName[]): Record<string, unknown> {
  const label = { job: 'Job', instance: 'Instance', pool: 'Pool', database: 'Database' }[name];
  const anchor = name === 'database' ? query.duration : pool.max;
  const anchorName = name === 'database' ? `${query.duration.name}_count` : ANCHOR;
  // Earlier selections narrow the choices, but only through labels the anchor metric has.
  const applicable = filtersBefore.filter(
    (before) => before === 'job' || before === 'instance' || (anchor.labelNames as readonly string[]).includes(before),
  );
  const matchers = applicable.map((before) => `${before}=~"$${before}"`);
  const selector = matchers.length > 0 ? `${anchorName}{${matchers.join(', ')}}` : anchorName;
  const query_ = `label_values(${selector}, ${name})`;
  return {
    name,
    label,
    type: 'query',
    datasource: DATASOURCE,
    query: { query: query_, refId: `${label}Variable`, qryType: 1 },
    definition: query_,
    // Refreshed on time-range change so new pods and pools appear without a reload.
    refresh: 2,
    multi: true,
    includeAll: true,
    // database is empty (absent) on probes not tied to one; ".*" keeps those series under "All".
    allValue: name === 'database' ? '.*' : '.+',
    current: { selected: true, text: ['All'], value: ['$__all'] },
    options: [],
    regex: '',
    sort: 1,
    hide: 0,
    skipUrlSync: false,
  };
}

function thresholdSteps(levels: ThresholdLines | undefined): Record<string, unknown> {
  const steps: Array<{ color: string; value: number | null }> = [{ color: 'green', value: null }];
  if (levels?.warning != null) steps.push({ color: 'orange', value: levels.warning });
  if (levels?.critical != null) steps.push({ color: 'red', value: levels.critical });
  return { mode: 'absolute', steps };
}

function renderPanel(spec: PanelSpec, id: number, gridPos: Record<string, number>): Record<string, unknown> {
  const targets = spec.targets.map((target, index) => ({
    datasource: DATASOURCE,
    expr: target.expr,
    legendFormat: target.legendFormat,
    refId: String.fromCharCode(65 + index),
    range: !target.instant,
    instant: target.instant === true,
    format: target.format ?? 'time_series',
    editorMode: 'code',
  }));
  const defaults: Record<string, unknown> = {
    unit: spec.unit,
    thresholds: thresholdSteps(spec.thresholds),
    color: { mode: spec.type === 'stat' && spec.thresholds ? 'thresholds' : 'palette-classic' },
    ...(spec.min !== undefined ? { min: spec.min } : {}),
    ...(spec.max !== undefined ? { max: spec.max } : {}),
  };
  let options: Record<string, unknown> = {};
  if (spec.type === 'timeseries') {
    defaults.custom = {
      drawStyle: 'line',
      lineWidth: 1,
      fillOpacity: spec.stack ? 20 : 0,
      showPoints: 'never',
      spanNulls: false,
      stacking: { mode: spec.stack ? 'normal' : 'none', group: 'A' },
      // Alert levels as dashed lines; without alert levels no line is drawn.
      thresholdsStyle: { mode: spec.thresholds ? 'dashed' : 'off' },
    };
    options = {
      legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
      tooltip: { mode: 'multi', sort: 'desc' },
    };
  } else if (spec.type === 'stat') {
    options = {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      colorMode: spec.thresholds ? 'background' : 'value',
      graphMode: 'none',
      textMode: 'auto',
      justifyMode: 'auto',
      orientation: 'auto',
    };
  } else {
    options = { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], fields: '' } };
  }
  return {
    id,
    type: spec.type,
    title: spec.title,
    description: spec.description,
    datasource: DATASOURCE,
    gridPos,
    fieldConfig: { defaults, overrides: [] },
    options,
    targets,
    ...(spec.type === 'table'
      ? {
          transformations: [
            { id: 'organize', options: { excludeByName: { Time: true }, renameByName: { Value: 'errors' } } },
          ],
        }
      : {}),
  };
}

export function renderDashboard(spec: DashboardSpec): Record<string, unknown> {
  const variables: VariableName[] = ['job', 'instance', ...spec.filters];
  const panels: Array<Record<string, unknown>> = [];
  let id = 1;
  let y = 0;
  for (const row of spec.rows) {
    panels.push({
      id: id++,
      type: 'row',
      title: row.title,
      collapsed: false,
      gridPos: { h: 1, w: 24, x: 0, y },
      panels: [],
    });
    y += 1;
    let x = 0;
    let rowHeight = 0;
    for (const panel of row.panels) {
      const w = panel.width ?? (panel.type === 'stat' ? 4 : 12);
      const h = panel.height ?? (panel.type === 'stat' ? 4 : 8);
      if (x + w > 24) {
        x = 0;
        y += rowHeight;
        rowHeight = 0;
      }
      panels.push(renderPanel(panel, id++, { h, w, x, y }));
      x += w;
      rowHeight = Math.max(rowHeight, h);
    }
    y += rowHeight;
  }
  return {
    uid: spec.uid,
    title: spec.title,
    description: spec.description,
    tags: [TAG, 'neo4j'],
    timezone: '',
    editable: false,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    refresh: '30s',
    time: { from: 'now-1h', to: 'now' },
    timepicker: {},
    fiscalYearStartMonth: 0,
    liveNow: false,
    weekStart: '',
    annotations: {
      list: [
        {
          builtIn: 1,
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        },
      ],
    },
    links: [
      {
        title: 'Neo4j pool dashboards',
        type: 'dashboards',
        tags: [TAG],
        asDropdown: true,
        includeVars: true,
        keepTime: true,
        icon: 'external link',
        targetBlank: false,
        tooltip: '',
        url: '',
      },
    ],
    templating: {
      list: [
        {
          name: 'datasource',
          label: 'Data source',
          type: 'datasource',
          query: 'prometheus',
          current: {},
          hide: 0,
          includeAll: false,
          multi: false,
          options: [],
          refresh: 1,
          regex: '',
          skipUrlSync: false,
        },
        ...variables.map((name, index) => variable(name, variables.slice(0, index))),
      ],
    },
    panels,
  };
}

// ---------------------------------------------------------------------------------------------
// The chart's alert definitions: what the PrometheusRule template needs to render the same rules
// as `neo4j-pool-sidecar rules` from the chart's values.

export const SELECTOR_PLACEHOLDER = '__SELECTOR__';
export const WINDOW_PLACEHOLDER = '__WINDOW__';

/** The Helm template's substitution, in TypeScript, to prove the placeholders reproduce the renderer. */
export function fillExpression(template: string, selector: string, window: string): string {
  const trimmed = selector.trim();
  const withSelector =
    trimmed === ''
      ? template.replaceAll(`, ${SELECTOR_PLACEHOLDER}}`, '}').replaceAll(`{${SELECTOR_PLACEHOLDER}}`, '')
      : template.replaceAll(SELECTOR_PLACEHOLDER, trimmed);
  return withSelector.replaceAll(WINDOW_PLACEHOLDER, window);
}

export function alertDefinitionsForChart(): Record<string, unknown> {
  const definitions = THRESHOLD_KEYS.map((key) => {
    const definition = ALERT_DEFINITIONS[key];
    const expression = definition.expression({ selector: SELECTOR_PLACEHOLDER, window: WINDOW_PLACEHOLDER });
    for (const [selector, window] of [
      ['', '5m'],
      ['job="x", namespace=~"a|b"', '10m'],
    ] as const) {
      const expected = definition.expression({ selector, window });
      const filled = fillExpression(expression, selector, window);
      if (filled !== expected) {
        throw new Error(`placeholder substitution does not reproduce ${key}: ${filled} !== ${expected}`);
      }
    }
    return {
      key,
      nameSuffix: definition.nameSuffix,
      anchor: definition.anchor,
      summary: definition.summary,
      description: definition.description,
      unit: definition.unit,
      expression,
    };
  });
  return { selectorPlaceholder: SELECTOR_PLACEHOLDER, windowPlaceholder: WINDOW_PLACEHOLDER, definitions };
}

// ---------------------------------------------------------------------------------------------
// The chart's values schema: `config` is the sidecar's own config schema, so a misspelt option or an
// out-of-range threshold fails `helm install` instead of crash-looping the sidecar.

type JsonSchema = Record<string, unknown>;

const str = (extra: JsonSchema = {}): JsonSchema => ({ type: 'string', ...extra });
const bool: JsonSchema = { type: 'boolean' };
const stringMap: JsonSchema = { type: 'object', additionalProperties: { type: 'string' } };
const freeObject: JsonSchema = { type: 'object' };
const portNumber: JsonSchema = { type: 'integer', minimum: 1, maximum: 65535 };
const closed = (properties: Record<string, JsonSchema>, extra: JsonSchema = {}): JsonSchema => ({
  type: 'object',
  properties,
  additionalProperties: false,
  ...extra,
});
const monitor = (description: string): JsonSchema =>
  closed({ enabled: bool, interval: str(), scrapeTimeout: str(), additionalLabels: stringMap }, { description });

function sidecarConfigSchema(): JsonSchema {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  delete schema.$schema;
  const neo4j = (schema.properties as Record<string, { properties: Record<string, unknown> }>).neo4j!;
  // The chart sets these from neo4jCredentials; a password in values is refused.
  delete neo4j.properties.password;
  delete neo4j.properties.passwordFile;
  return { ...schema, description: "The sidecar's configuration file (docs/configuration.md), without the password." };
}

export function valuesSchema(): JsonSchema {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'neo4j-pool-sidecar chart values',
    ...closed({
      image: closed({
        repository: str({ minLength: 1 }),
        tag: str(),
        pullPolicy: str({ enum: ['Always', 'IfNotPresent', 'Never'] }),
      }),
      sidecarMode: str({ enum: ['auto', 'native', 'regular'] }),
      neo4jCredentials: closed(
        { existingSecret: str({ minLength: 1 }), passwordKey: str({ minLength: 1 }) },
        { required: ['existingSecret', 'passwordKey'] },
      ),
      config: sidecarConfigSchema(),
      ports: closed({ metrics: portNumber, bolt: portNumber }),
      resources: freeObject,
      securityContext: freeObject,
      livenessProbe: freeObject,
      readinessProbe: freeObject,
      startupProbe: freeObject,
      extraEnv: { type: 'array', items: freeObject },
      service: closed({
        enabled: bool,
        type: str({ enum: ['ClusterIP', 'NodePort', 'LoadBalancer'] }),
        annotations: stringMap,
      }),
      serviceMonitor: monitor('A prometheus-operator ServiceMonitor for the metrics Service.'),
      podMonitor: monitor('A prometheus-operator PodMonitor for the sidecar pods.'),
      prometheusRule: closed({ enabled: bool, additionalLabels: stringMap }),
      dashboards: closed({ enabled: bool, namespace: str(), labels: stringMap, annotations: stringMap }),
      exampleWorker: closed({
        enabled: bool,
        replicas: { type: 'integer', minimum: 0 },
        image: closed({ repository: str({ minLength: 1 }), tag: str({ minLength: 1 }), pullPolicy: str() }),
        intervalSeconds: { type: 'integer', minimum: 1 },
        resources: freeObject,
        securityContext: freeObject,
        podAnnotations: stringMap,
        nodeSelector: stringMap,
        tolerations: { type: 'array' },
        affinity: freeObject,
      }),
      nameOverride: str(),
      fullnameOverride: str(),
      commonLabels: stringMap,
      // Helm passes a parent chart's globals to every subchart.
      global: freeObject,
    }),
  };
}

// ---------------------------------------------------------------------------------------------

export const CHART_DIR = join(repoRoot, 'helm', 'neo4j-pool-sidecar');

/** Every generated file: path relative to the repository root, and its content. */
export function generatedFiles(): Array<{ path: string; content: string }> {
  const files: Array<{ path: string; content: string }> = [];
  for (const build of DASHBOARD_SPECS) {
    const spec = build();
    const content = `${JSON.stringify(renderDashboard(spec), null, 2)}\n`;
    files.push({ path: join('dashboards', spec.file), content });
    files.push({ path: join('helm', 'neo4j-pool-sidecar', 'dashboards', spec.file), content });
  }
  files.push({
    path: join('helm', 'neo4j-pool-sidecar', 'values.schema.json'),
    content: `${JSON.stringify(valuesSchema(), null, 2)}\n`,
  });
  files.push({
    path: join('helm', 'neo4j-pool-sidecar', 'files', 'alert-definitions.yaml'),
    content: `# Generated by scripts/gen-dashboards.ts from src/alerts/thresholds.ts; do not edit.\n${toYaml(alertDefinitionsForChart(), { lineWidth: 0 })}`,
  });
  return files;
}

async function main(): Promise<void> {
  const check = process.argv.includes('--check');
  const stale: string[] = [];
  for (const file of generatedFiles()) {
    const absolute = join(repoRoot, file.path);
    const current = await readFile(absolute, 'utf8').catch(() => undefined);
    if (current === file.content) continue;
    if (check) stale.push(file.path);
    else {
      await mkdir(dirname(absolute), { recursive: true });
      await writeFile(absolute, file.content);
      console.log(`wrote ${file.path}`);
    }
  }
  if (stale.length > 0) {
    console.error(`out of date (run: npx tsx scripts/gen-dashboards.ts):\n  ${stale.join('\n  ')}`);
    process.exit(1);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
