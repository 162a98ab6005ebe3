/**
 * Generates `promtool test rules` cases from an alerts config: for every enabled threshold, input
 * series that reach the levels and series that stay below them, and the expected alerts one
 * evaluation before and at the `for` boundary, computed by simulating Prometheus's alert state
 * machine on the same 15 s grid promtool evaluates on.
 *
 * Values are modelled exactly as PromQL computes them from these series: counters start at 0 and grow
 * by a constant step, so `increase(x[w])` is `min(n, w/15s) x step` after n steps (under both the
 * closed ranges of Prometheus 2 and the left-open ranges of Prometheus 3), and `rate` is that over w.
 */

import { renderRule } from '../../src/alerts/rules.ts';
import { renderTemplate } from '../../src/alerts/template.ts';
import { type AlertRule, configuredAlerts, type Severity } from '../../src/alerts/thresholds.ts';
import { type AlertsConfig, parsePrometheusDuration, type ThresholdKey } from '../../src/config/alerts.ts';

export const STEP_SECONDS = 15;

export interface PromtoolCaseOptions {
  /** Labels every input series carries (they must match the configured selector). */
  seriesLabels: Record<string, string>;
  /** With a selector configured: labels of look-alike series that must never fire. */
  decoyLabels?: Record<string, string>;
}

interface InputSeries {
  series: string;
  values: string;
}

interface ExpectedAlert {
  exp_labels: Record<string, string>;
  exp_annotations: Record<string, string>;
}

interface AlertRuleTest {
  eval_time: string;
  alertname: string;
  exp_alerts: ExpectedAlert[];
}

export interface PromtoolTestGroup {
  name: string;
  interval: string;
  input_series: InputSeries[];
  alert_rule_test: AlertRuleTest[];
}

export interface PromtoolTestFile {
  rule_files: string[];
  evaluation_interval: string;
  tests: PromtoolTestGroup[];
}

/** An alert instance the expression yields: its labels (without severity) and its value per grid step. */
interface Instance {
  labels: Record<string, string>;
  /** undefined: no result at that step. */
  value(step: number): number | undefined;
  /** Added to the level for this instance (the rule's `allowance`: ProbeDown's probe interval). */
  allowance?: number;
}

/** A scenario: the input series and the instances the alert expression yields from them. */
interface Scenario {
  name: string;
  series: InputSeries[];
  instances: Instance[];
  /** Series that must not produce alerts whatever their values. */
  decoys?: InputSeries[];
}

function literal(value: number): string {
  const text = String(Number(value.toPrecision(12)));
  if (/e/i.test(text)) throw new Error(`series value ${value} would need an exponent`);
  return text;
}

function selectorText(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([name, value]) => `${name}="${value}"`)
    .join(', ');
}

function seriesName(metric: string, labels: Record<string, string>): string {
  return `${metric}{${selectorText(labels)}}`;
}

function constant(value: number, steps: number): string {
  return `${literal(value)}+0x${steps}`;
}

function ramp(step: number, steps: number): string {
  return `0+${literal(step)}x${steps}`;
}

/** Samples per window on the grid. */
function samplesPerWindow(rule: AlertRule): number {
  return Math.round(rule.windowMs / 1000 / STEP_SECONDS);
}

function increaseAt(step: number, perStep: number, windowSamples: number): number | undefined {
  if (step < 1) return undefined;
  return Math.min(step, windowSamples) * perStep;
}

/** Per-step increment whose increase first reaches `level` at step `crossing`, without exceeding `ceiling`. */
function stepCrossingBetween(level: number, ceiling: number, windowSamples: number): number | undefined {
  for (let crossing = Math.ceil(windowSamples / 2); crossing <= windowSamples; crossing++) {
    const perStep = Number((level / (crossing - 0.5)).toPrecision(12));
    if (windowSamples * perStep < ceiling * 0.98) return perStep;
  }
  return undefined;
}

type Target = 'between' | 'above' | 'quiet';

/** Builds the scenario that puts a threshold's value between its levels, above both, or below both. */
function scenario(
  key: ThresholdKey,
  target: Target,
  rules: readonly AlertRule[],
  labels: Record<string, string>,
  steps: number,
): Scenario | undefined {
  const levels = rules.map((rule) => rule.level);
  const low = Math.min(...levels);
  const high = Math.max(...levels);
  const warning = rules.find((rule) => rule.severity === 'warning')?.level;
  const critical = rules.find((rule) => rule.severity === 'critical')?.level;
  const any = rules[0]!;
  const gaugeTarget = (max = Number.POSITIVE_INFINITY): number | undefined => {
    if (target === 'quiet') return low * 0.5;
    if (target === 'above') return Math.min(max, high * 1.5);
    if (warning === undefined || critical === undefined || critical <= warning * 1.02) return undefined;
    return (warning + critical) / 2;
  };
  /** Counter per-step increments for increase-like levels (already in increase units). */
  const counterStep = (lowLevel: number, highLevel: number, warningLevel?: number, criticalLevel?: number) => {
    const samples = samplesPerWindow(any);
    if (target === 'quiet') return Number(((lowLevel * 0.5) / samples).toPrecision(12));
    if (target === 'above') return Number((highLevel * 1.5).toPrecision(12));
    if (warningLevel === undefined || criticalLevel === undefined) return undefined;
    return stepCrossingBetween(warningLevel, criticalLevel, samples);
  };
  const windowSeconds = any.windowMs / 1000;

  switch (key) {
    case 'acquisitionLatency': {
      const x = gaugeTarget();
      if (x === undefined) return undefined;
      const series = { ...labels, probe: 'acquisition', database: 'neo4j' };
      return {
        name: target,
        series: [{ series: seriesName('neo4j_probe_duration_seconds', series), values: constant(x, steps) }],
        instances: [{ labels: series, value: () => Number(literal(x)) }],
      };
    }
    case 'poolUtilization': {
      const x = gaugeTarget(1);
      if (x === undefined) return undefined;
      const series = { ...labels, pool: 'app', address: 'db-1:7687' };
      const inUse = Math.round(x * 1000);
      return {
        name: target,
        series: [
          { series: seriesName('neo4j_driver_connections_in_use', series), values: constant(inUse, steps) },
          { series: seriesName('neo4j_driver_connections_max', series), values: constant(1000, steps) },
        ],
        instances: [{ labels: series, value: () => inUse / 1000 }],
      };
    }
    case 'pendingAcquisitions': {
      const x = gaugeTarget();
      if (x === undefined) return undefined;
      const series = { ...labels, pool: 'app', address: 'db-1:7687' };
      return {
        name: target,
        series: [{ series: seriesName('neo4j_driver_connections_acquiring', series), values: constant(x, steps) }],
        instances: [{ labels: series, value: () => Number(literal(x)) }],
      };
    }
    case 'proxyPoolWaiting': {
      const x = gaugeTarget();
      if (x === undefined) return undefined;
      return {
        name: target,
        series: [{ series: seriesName('neo4j_proxy_pool_clients_waiting', labels), values: constant(x, steps) }],
        instances: [{ labels, value: () => Number(literal(x)) }],
      };
    }
    case 'proxyClientsHeld': {
      const x = gaugeTarget();
      if (x === undefined) return undefined;
      const series = { ...labels, reason: 'outage' };
      return {
        name: target,
        series: [{ series: seriesName('neo4j_proxy_pool_clients_held', series), values: constant(x, steps) }],
        instances: [{ labels: series, value: () => Number(literal(x)) }],
      };
    }
    case 'proxyHoldTimeouts':
    case 'proxyPauseExpired':
    case 'proxyIdleTransactionTimeouts':
    case 'proxyRoutingFailovers': {
      const perStep = counterStep(low, high, warning, critical);
      if (perStep === undefined) return undefined;
      const counters = {
        proxyHoldTimeouts: ['neo4j_proxy_pool_holds_total', { reason: 'outage', outcome: 'timed_out' }],
        proxyPauseExpired: ['neo4j_proxy_pool_pauses_expired_total', {}],
        proxyIdleTransactionTimeouts: ['neo4j_proxy_idle_transaction_timeouts_total', { user_agent: 'neo4j-python' }],
        proxyRoutingFailovers: ['neo4j_proxy_routing_failovers_total', { role: 'reader' }],
      } as const;
      const [metric, own] = counters[key];
      const series = { ...labels, ...own };
      return {
        name: target,
        series: [{ series: seriesName(metric, series), values: ramp(perStep, steps) }],
        // Holds that ended any other way never count, however many.
        ...(key === 'proxyHoldTimeouts'
          ? {
              decoys: [
                {
                  series: seriesName(metric, { ...labels, reason: 'outage', outcome: 'released' }),
                  values: ramp(50, steps),
                },
              ],
            }
          : {}),
        instances: [{ labels: series, value: (step) => increaseAt(step, perStep, samplesPerWindow(any)) }],
      };
    }
    case 'acquisitionTimeouts': {
      const perStep = counterStep(low, high, warning, critical);
      if (perStep === undefined) return undefined;
      const series = { ...labels, pool: 'app', address: 'db-1:7687' };
      return {
        name: target,
        series: [
          {
            series: seriesName('neo4j_driver_connections_acquisition_timeout_total', series),
            values: ramp(perStep, steps),
          },
        ],
        instances: [{ labels: series, value: (step) => increaseAt(step, perStep, samplesPerWindow(any)) }],
      };
    }
    case 'queryErrorRatio': {
      const x = gaugeTarget(1);
      if (x === undefined) return undefined;
      const queriesPerStep = 100;
      const failedPerStep = Number((x * queriesPerStep).toPrecision(12));
      const succeededPerStep = Number((queriesPerStep - failedPerStep).toPrecision(12));
      const common = { ...labels, source: 'app', database: 'neo4j', mode: 'read' };
      const samples = samplesPerWindow(any);
      const rate = (step: number, perStep: number) => (Math.min(step, samples) * perStep) / windowSeconds;
      return {
        name: target,
        series: [
          {
            series: seriesName('neo4j_query_duration_seconds_count', { ...common, outcome: 'error' }),
            values: ramp(failedPerStep, steps),
          },
          {
            series: seriesName('neo4j_query_duration_seconds_count', { ...common, outcome: 'success' }),
            values: ramp(succeededPerStep, steps),
          },
        ],
        // The sidecar's own probe queries never count, however badly they fail.
        decoys: [
          {
            series: seriesName('neo4j_query_duration_seconds_count', {
              ...labels,
              source: 'sidecar',
              database: 'neo4j',
              mode: 'read',
              outcome: 'error',
            }),
            values: ramp(50, steps),
          },
        ],
        instances: [
          {
            labels: { ...labels, source: 'app' },
            value: (step) => {
              if (step < 1) return undefined;
              const failed = rate(step, failedPerStep);
              const all = failed + rate(step, succeededPerStep);
              return all > 0 ? failed / all : undefined;
            },
          },
        ],
      };
    }
    case 'probeDown': {
      // Time since the last success grows with time, so one rising scenario crosses both levels. The
      // rule allows each probe its interval on top of the level: a probe that runs every 20th run
      // (fresh connect, 20 x 15 s) and succeeds each time stays quiet however long it has not run.
      if (target === 'between') return undefined;
      const everyRun = { ...labels, probe: 'round_trip', database: 'neo4j' };
      // Its database label is empty, which Prometheus stores as no label at all.
      const everyTwentiethRun = { ...labels, probe: 'fresh_connect' };
      const sparseInterval = 20 * STEP_SECONDS;
      const interval = (series: Record<string, string>, seconds: number) => ({
        series: seriesName('neo4j_probe_interval_seconds', series),
        values: constant(seconds, steps),
      });
      if (target === 'above') {
        return {
          name: 'down since start',
          series: [
            { series: seriesName('neo4j_probe_last_success_timestamp_seconds', everyRun), values: constant(0, steps) },
            interval(everyRun, STEP_SECONDS),
            {
              series: seriesName('neo4j_probe_last_success_timestamp_seconds', everyTwentiethRun),
              values: constant(0, steps),
            },
            interval(everyTwentiethRun, sparseInterval),
          ],
          instances: [
            { labels: everyRun, value: (step) => step * STEP_SECONDS, allowance: STEP_SECONDS },
            { labels: everyTwentiethRun, value: (step) => step * STEP_SECONDS, allowance: sparseInterval },
          ],
        };
      }
      // Succeeding on its own cadence: every step, and every 20th step (a staircase of timestamps).
      const staircase = Array.from({ length: Math.ceil((steps + 1) / 20) }, (_, i) => `${i * sparseInterval}x19`).join(
        ' ',
      );
      return {
        name: 'succeeding on its own cadence',
        series: [
          {
            series: seriesName('neo4j_probe_last_success_timestamp_seconds', everyRun),
            values: ramp(STEP_SECONDS, steps),
          },
          interval(everyRun, STEP_SECONDS),
          { series: seriesName('neo4j_probe_last_success_timestamp_seconds', everyTwentiethRun), values: staircase },
          interval(everyTwentiethRun, sparseInterval),
        ],
        instances: [
          { labels: everyRun, value: () => 0, allowance: STEP_SECONDS },
          {
            labels: everyTwentiethRun,
            value: (step) => (step % 20) * STEP_SECONDS,
            allowance: sparseInterval,
          },
        ],
      };
    }
    case 'connectionChurn': {
      const perStep = counterStep(
        low * windowSeconds,
        high * windowSeconds,
        warning === undefined ? undefined : warning * windowSeconds,
        critical === undefined ? undefined : critical * windowSeconds,
      );
      if (perStep === undefined) return undefined;
      const samples = samplesPerWindow(any);
      const proxyLabels = { ...labels, user_agent: 'neo4j-python/5' };
      const perSecond = (step: number) => {
        const increase = increaseAt(step, perStep, samples);
        return increase === undefined ? undefined : increase / windowSeconds;
      };
      return {
        name: target,
        series: [
          {
            series: seriesName('neo4j_census_connections_opened_total', {
              ...labels,
              connector: 'closed_before_census',
            }),
            values: ramp(perStep, steps),
          },
          {
            series: seriesName('neo4j_census_connections_opened_total', { ...labels, connector: 'bolt' }),
            values: constant(0, steps),
          },
          // The same churn seen by the Bolt proxy, per client family: an instance of its own.
          {
            series: seriesName('neo4j_proxy_client_connections_opened_total', { ...proxyLabels }),
            values: ramp(perStep, steps),
          },
        ],
        instances: [
          { labels: { ...labels }, value: perSecond },
          { labels: proxyLabels, value: perSecond },
        ],
      };
    }
    case 'credentialsRejected':
    case 'proxyPaused': {
      // Like probeDown: the time since the refusal (or pause) began grows, so one scenario crosses both levels.
      if (target === 'between') return undefined;
      const rising = target === 'above';
      const metric =
        key === 'proxyPaused'
          ? 'neo4j_proxy_pool_paused_since_timestamp_seconds'
          : 'neo4j_sidecar_credentials_rejected_since_timestamp_seconds';
      return {
        name: rising ? 'since the start' : 'never',
        series: [
          {
            // From the first step (time 15 s) on, or 0 throughout: not refused, not paused.
            series: seriesName(metric, labels),
            values: rising ? `0 ${constant(STEP_SECONDS, steps - 1)}` : constant(0, steps),
          },
        ],
        instances: [{ labels, value: (step) => (rising && step >= 1 ? (step - 1) * STEP_SECONDS : undefined) }],
      };
    }
    case 'longRunningTransactions': {
      const x = gaugeTarget();
      if (x === undefined) return undefined;
      const series = { ...labels, database: 'neo4j' };
      return {
        name: target,
        series: [{ series: seriesName('neo4j_census_oldest_transaction_seconds', series), values: constant(x, steps) }],
        instances: [{ labels: series, value: () => Number(literal(x)) }],
      };
    }
  }
}

/** Grid steps at which a rule fires for an instance, simulating Prometheus's pending/firing state machine. */
function firingSteps(rule: AlertRule, instance: Instance, steps: number): boolean[] {
  const firing: boolean[] = [];
  let activeSince: number | undefined;
  for (let step = 0; step <= steps; step++) {
    const current = instance.value(step);
    const holds = current !== undefined && current >= rule.level + (instance.allowance ?? 0);
    if (!holds) activeSince = undefined;
    else activeSince ??= step;
    firing.push(activeSince !== undefined && (step - activeSince) * STEP_SECONDS * 1000 >= rule.forMs);
  }
  return firing;
}

function horizonSteps(rules: readonly AlertRule[]): number {
  const longest = Math.max(...rules.map((rule) => rule.forMs + rule.windowMs)) / 1000;
  // ProbeDown's value grows with time, and its sparsest probe in the scenarios is allowed 20 steps;
  // CredentialsRejected's and ProxyPausedTooLong's grow with time too.
  const elapsedLevel = Math.max(
    ...rules.map((rule) => {
      if (rule.definition.key === 'probeDown') return rule.level + 20 * STEP_SECONDS;
      return rule.definition.key === 'credentialsRejected' || rule.definition.key === 'proxyPaused' ? rule.level : 0;
    }),
  );
  return Math.ceil((longest + elapsedLevel) / STEP_SECONDS) + 8;
}

function evalTime(step: number): string {
  return `${step * STEP_SECONDS}s`;
}

export interface GeneratedCase {
  group: PromtoolTestGroup;
  /** Which severities fire in this case (empty for a quiet case), for the test's own sanity checks. */
  fires: Severity[];
}

export function generateCases(config: AlertsConfig, options: PromtoolCaseOptions): GeneratedCase[] {
  const rules = configuredAlerts(config.thresholds, config.prometheus.namePrefix);
  const byKey = new Map<ThresholdKey, AlertRule[]>();
  for (const rule of rules) byKey.set(rule.definition.key, [...(byKey.get(rule.definition.key) ?? []), rule]);
  const cases: GeneratedCase[] = [];
  for (const [key, keyRules] of byKey) {
    const steps = horizonSteps(keyRules);
    const name = keyRules[0]!.name;
    for (const target of ['between', 'above', 'quiet'] as const) {
      const built = scenario(key, target, keyRules, options.seriesLabels, steps);
      if (!built) continue;
      const pairs = keyRules.flatMap((rule) =>
        built.instances.map((instance) => ({ rule, instance, firing: firingSteps(rule, instance, steps) })),
      );
      const expectedAt = (step: number): ExpectedAlert[] =>
        pairs
          .filter((pair) => pair.firing[step])
          .map(({ rule, instance }) => {
            const rendered = renderRule(config, rule);
            const value = instance.value(step)!;
            return {
              exp_labels: { ...instance.labels, ...rendered.labels },
              exp_annotations: {
                summary: rendered.annotations.summary,
                description: renderTemplate(rendered.annotations.description, instance.labels, value),
                runbook_url: rendered.annotations.runbook_url,
              },
            };
          });
      const checks = new Set<number>();
      const fires = new Set<Severity>();
      for (const { rule, firing } of pairs) {
        const first = firing.indexOf(true);
        if (first < 0) continue;
        fires.add(rule.severity);
        if (first > 0) checks.add(first - 1);
        checks.add(first);
      }
      checks.add(steps);
      const decoys = [...(built.decoys ?? [])];
      if (options.decoyLabels && target === 'quiet') {
        const lookalike = scenario(key, 'above', keyRules, options.decoyLabels, steps);
        if (lookalike) decoys.push(...lookalike.series);
      }
      cases.push({
        fires: [...fires],
        group: {
          name: `${name}: ${built.name}`,
          interval: `${STEP_SECONDS}s`,
          input_series: [...built.series, ...decoys],
          alert_rule_test: [...checks]
            .sort((a, b) => a - b)
            .map((step) => ({ eval_time: evalTime(step), alertname: name, exp_alerts: expectedAt(step) })),
        },
      });
    }
  }
  return cases;
}

export function promtoolTestFile(ruleFile: string, cases: readonly GeneratedCase[]): PromtoolTestFile {
  return {
    rule_files: [ruleFile],
    evaluation_interval: `${STEP_SECONDS}s`,
    tests: cases.map((generated) => generated.group),
  };
}

export function forSeconds(text: string): number {
  return parsePrometheusDuration(text) / 1000;
}
