/**
 * The `alerts` section: one set of thresholds that both the sidecar's own alert evaluation and the
 * rendered Prometheus rules (`neo4j-pool-sidecar rules`) read, so the two can never disagree.
 *
 * Every threshold has a warning and a critical level (null: that severity is not raised), a `for`
 * duration the condition must hold before the alert fires, and an enabled flag. Levels are "at or
 * above": the alert condition is `value >= level`.
 */
import { z } from 'zod';

/** Prometheus duration syntax, units in descending order: `90s`, `1m30s`, `2h`, `0s`. */
export const PROMETHEUS_DURATION = /^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/;
const DURATION_UNITS_MS = [365 * 86400_000, 7 * 86400_000, 86400_000, 3600_000, 60_000, 1000, 1];

/** Milliseconds of a Prometheus duration string; throws on anything else. */
export function parsePrometheusDuration(text: string): number {
  const match = PROMETHEUS_DURATION.exec(text);
  if (!match || text === '') throw new Error(`not a Prometheus duration: "${text}"`);
  return DURATION_UNITS_MS.reduce((total, unitMs, i) => total + Number(match[i + 1] ?? 0) * unitMs, 0);
}

const duration = z.string().refine((text) => text !== '' && PROMETHEUS_DURATION.test(text), {
  message: 'must be a Prometheus duration such as 30s, 2m, 1h30m or 0s',
});

const windowDuration = duration.refine(
  (text) => PROMETHEUS_DURATION.test(text) && parsePrometheusDuration(text) >= 30_000,
  {
    message: 'must be at least 30s (rates need several samples)',
  },
);

interface ThresholdDefaults {
  warning: number | null;
  critical: number | null;
  for: string;
  /** Highest meaningful level (1 for ratios). */
  max?: number;
}

function levels(defaults: ThresholdDefaults, unit: string) {
  const level = defaults.max === undefined ? z.number().gt(0) : z.number().gt(0).max(defaults.max);
  return {
    enabled: z.boolean().default(true).describe('Evaluate this alert in the sidecar and render it into the rules.'),
    warning: level.nullable().default(defaults.warning).describe(`Warning level, ${unit} (null: no warning alert).`),
    critical: level
      .nullable()
      .default(defaults.critical)
      .describe(`Critical level, ${unit} (null: no critical alert).`),
    for: duration.default(defaults.for).describe('How long the level must be reached before the alert fires.'),
  };
}

function criticalNotBelowWarning(
  threshold: { warning: number | null; critical: number | null },
  context: z.RefinementCtx,
): void {
  if (threshold.warning !== null && threshold.critical !== null && threshold.critical < threshold.warning) {
    context.addIssue({ code: 'custom', path: ['critical'], message: 'must not be below the warning level' });
  }
}

function threshold(defaults: ThresholdDefaults, unit: string, meaning: string) {
  return z.strictObject(levels(defaults, unit)).superRefine(criticalNotBelowWarning).prefault({}).describe(meaning);
}

function windowedThreshold(defaults: ThresholdDefaults & { window: string }, unit: string, meaning: string) {
  return z
    .strictObject({
      ...levels(defaults, unit),
      window: windowDuration.default(defaults.window).describe('The rate or increase is taken over this window.'),
    })
    .superRefine(criticalNotBelowWarning)
    .prefault({})
    .describe(meaning);
}

export const thresholdsSection = z
  .strictObject({
    acquisitionLatency: threshold(
      { warning: 0.1, critical: 1, for: '2m' },
      'seconds',
      'Time the acquisition probe took to get a connection from the sidecar pool.',
    ),
    poolUtilization: threshold(
      { warning: 0.8, critical: 0.95, for: '5m', max: 1 },
      'ratio of in-use to max connections',
      'Connections in use divided by the pool size, per pool and address.',
    ),
    pendingAcquisitions: threshold(
      { warning: 1, critical: 10, for: '2m' },
      'waiting callers',
      'Callers waiting for a connection from a pool, per pool and address.',
    ),
    acquisitionTimeouts: windowedThreshold(
      { warning: 1, critical: 10, for: '0s', window: '5m' },
      'timeouts within the window',
      'Acquisitions that failed with "Connection acquisition timed out", per pool and address.',
    ),
    queryErrorRatio: windowedThreshold(
      { warning: 0.05, critical: 0.25, for: '5m', window: '5m', max: 1 },
      'ratio of failed to all queries',
      "Failed queries divided by all queries, per source (the sidecar's own probe queries excluded).",
    ),
    probeDown: threshold(
      { warning: 60, critical: 300, for: '0s' },
      'seconds since the last success',
      'Time since a probe last succeeded, per probe and database.',
    ),
    connectionChurn: windowedThreshold(
      { warning: 1, critical: 10, for: '10m', window: '5m' },
      'new server connections per second',
      'Connections opened on the Neo4j server per second, from the census (the per-task-driver pattern).',
    ),
    proxyPoolWaiting: threshold(
      { warning: 1, critical: 10, for: '2m' },
      'waiting client connections',
      "Client connections waiting for one of the Bolt proxy's pooled Neo4j connections (proxy.pooling).",
    ),
    proxyClientsHeld: threshold(
      { warning: 1, critical: 20, for: '1m' },
      'held client connections',
      'Client connections the Bolt proxy holds instead of lending them a Neo4j connection, per reason: outage (Neo4j unreachable), paused (neo4j-pool-sidecar pause) or no_writer (cluster routing knows no reachable writer). A restart holds them for seconds; a minute means Neo4j stays down or a pause was left on.',
    ),
    proxyHoldTimeouts: windowedThreshold(
      { warning: 1, critical: 10, for: '0s', window: '5m' },
      'holds timed out within the window',
      'Held clients that reached proxy.pooling.holdTimeoutMs and got DatabaseUnavailable (which drivers retry, and auto-commit session.run does not), per reason.',
    ),
    proxyPaused: threshold(
      { warning: 60, critical: 300, for: '0s' },
      'seconds paused',
      "How long the Bolt proxy has been paused without a resume: a Neo4j restart takes seconds, so a minute is a pause left on (it ends by itself at proxy.pooling.maxPauseMs, 2 minutes by default; the critical level matters where that was raised: past the drivers' 60 s acquisition timeout every held new driver has failed).",
    ),
    proxyPauseExpired: windowedThreshold(
      { warning: 1, critical: 3, for: '0s', window: '15m' },
      'pauses ended by the maximum within the window',
      'Pauses that reached proxy.pooling.maxPauseMs and were ended by the proxy itself: a forgotten pause, or a maintenance that overran.',
    ),
    proxyIdleTransactionTimeouts: windowedThreshold(
      { warning: 1, critical: 10, for: '0s', window: '15m' },
      'clients closed within the window',
      'Clients the Bolt proxy closed for sitting idle inside an explicit transaction (proxy.idleTransactionTimeoutMs), per driver family: a hung or stopped worker that held locks.',
    ),
    proxyRoutingFailovers: windowedThreshold(
      { warning: 5, critical: 20, for: '0s', window: '15m' },
      'failovers within the window',
      'Cluster members the Bolt proxy dropped from its routing tables for failing (connection refused or lost, or a writer that said it is not one), per role: a member down costs about one per routing table, so a rolling restart stays below the warning and members failing again and again do not.',
    ),
    longRunningTransactions: threshold(
      { warning: 120, critical: 900, for: '0s' },
      'seconds',
      'Age of the oldest open transaction on the server, per database, from the census.',
    ),
    credentialsRejected: threshold(
      { warning: 60, critical: 600, for: '0s' },
      'seconds since the refusal began',
      "How long Neo4j has refused the sidecar's own credentials; meanwhile the sidecar logs in only when a retry is due or the password file changes.",
    ),
  })
  .prefault({});

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const MATCHER = String.raw`\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(?:=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*`;
const SELECTOR = new RegExp(`^(?:${MATCHER}(?:,${MATCHER})*)?$`);

export const alertsSection = z
  .strictObject({
    enabled: z
      .boolean()
      .default(true)
      .describe('Evaluate the thresholds in the sidecar on its own live numbers (the rules command works either way).'),
    evaluationIntervalSeconds: z
      .number()
      .int()
      .min(1)
      .max(3600)
      .default(15)
      .describe('How often the sidecar evaluates the thresholds.'),
    statsdEvents: z
      .boolean()
      .default(true)
      .describe('Send a StatsD event (DogStatsD) when an alert fires or resolves, if StatsD is enabled.'),
    prometheus: z
      .strictObject({
        namePrefix: z
          .string()
          .regex(/^[A-Z][A-Za-z0-9]*$/, { message: 'must be CamelCase letters and digits' })
          .default('Neo4jPool')
          .describe('Common prefix of the CamelCase alert names.'),
        groupName: z.string().min(1).default('neo4j-pool-sidecar').describe('Name of the rule group.'),
        selector: z
          .string()
          .regex(SELECTOR, { message: 'must be PromQL label matchers such as job="neo4j-pool-sidecar"' })
          .default('')
          .describe('Label matchers added to every metric in the rules, e.g. `job="neo4j-pool-sidecar"`.'),
        runbookUrlTemplate: z
          .string()
          .includes('%s', { message: 'must contain %s, replaced by the runbook anchor of each alert' })
          .default('https://github.com/neo4j-pool-sidecar/neo4j-pool-sidecar/blob/main/docs/alerts.md#%s')
          .describe("runbook_url of each alert; %s becomes the alert's section anchor in docs/alerts.md."),
        labels: z
          .record(z.string().regex(LABEL_NAME), z.string())
          .refine((labels) => !('severity' in labels), { message: 'severity is set per alert' })
          .default({})
          .describe('Extra labels on every rendered alert (e.g. team).'),
      })
      .prefault({}),
    thresholds: thresholdsSection,
  })
  .prefault({});

export type AlertsConfig = z.output<typeof alertsSection>;
export type ThresholdsConfig = AlertsConfig['thresholds'];
export type ThresholdKey = keyof ThresholdsConfig;
export type ThresholdConfig = ThresholdsConfig[ThresholdKey];
