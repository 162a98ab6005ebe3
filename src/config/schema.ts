/**
 * The whole configuration as one typed schema. docs/configuration.md is generated from it
 * (`npm run docs`) and a test fails when the two drift apart.
 *
 * Every object is strict: an unknown key is an error naming it, since a misspelt threshold that is
 * silently ignored is worse than a sidecar that refuses to start.
 */

import cron from 'node-cron';
import { z } from 'zod';
import { type AlertsConfig, alertsSection, parsePrometheusDuration } from './alerts.ts';
import { longestScheduleIntervalMs, type ProbesConfig, probesSection } from './probes.ts';

const port = z.number().int().min(1).max(65535);
/** Listen ports may be 0: the OS picks a free one (tests, several sidecars on one host). */
const listenPort = z.number().int().min(0).max(65535);
const host = z.string().min(1);
const durationMs = (min: number) => z.number().int().min(min);

export const neo4jSection = z
  .strictObject({
    uri: z
      .string()
      .regex(/^(bolt|bolt\+s|bolt\+ssc|neo4j|neo4j\+s|neo4j\+ssc):\/\/[^\s/]+(\/.*)?$/, {
        message: 'must be a bolt://, bolt+s://, bolt+ssc://, neo4j://, neo4j+s:// or neo4j+ssc:// URI',
      })
      .optional()
      .describe('Neo4j server the sidecar probes and the proxy forwards to. Env: NEO4J_URI. Required to run.'),
    username: z.string().min(1).default('neo4j').describe('Env: NEO4J_USERNAME.'),
    password: z
      .string()
      .optional()
      .describe('Env: NEO4J_PASSWORD, or NEO4J_PASSWORD_FILE naming a file (e.g. a mounted Secret). Never logged.'),
    passwordFile: z
      .string()
      .optional()
      .describe(
        'Path of a file holding the password; read at start-up and every second after, a new password is used at once (Kubernetes updates mounted Secrets in place). Env: NEO4J_PASSWORD_FILE.',
      ),
    maxConnectionPoolSize: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(5)
      .describe("Pool size of the sidecar's own driver (probes, readiness)."),
    connectionAcquisitionTimeoutMs: durationMs(1).default(5000).describe("The sidecar's own driver."),
    connectionTimeoutMs: durationMs(1).default(5000).describe("The sidecar's own driver: TCP connect timeout."),
    tlsCaFile: z
      .string()
      .optional()
      .describe('PEM file of CAs to trust for bolt+s:// and neo4j+s:// upstreams (default: the system CAs).'),
    authRetryInitialMs: durationMs(1000)
      .default(10000)
      .describe(
        "After Neo4j refuses the sidecar's credentials, the first retry (one login) waits this long; keep it above the server's dbms.security.auth_lock_time (5 s by default) so the sidecar never keeps its user locked. A changed password file is tried at once.",
      ),
    authRetryMaxMs: durationMs(1000)
      .default(300000)
      .describe('Each further retry waits twice as long as the one before, up to this.'),
  })
  .superRefine((neo4j, context) => {
    if (neo4j.authRetryMaxMs < neo4j.authRetryInitialMs) {
      context.addIssue({ code: 'custom', path: ['authRetryMaxMs'], message: 'must not be below authRetryInitialMs' });
    }
  })
  .prefault({});

export const httpSection = z
  .strictObject({
    host: host
      .default('127.0.0.1')
      .describe('Listen address of /metrics, /healthz, /readyz, /status and /openapi.json. Loopback by default.'),
    port: listenPort.default(9464).describe('Listen port (9464 is the OpenTelemetry Prometheus exporter convention).'),
    adminTokenFile: z
      .string()
      .min(1)
      .optional()
      .describe(
        'File holding a bearer token (at least 16 characters; re-read when it changes). When set, the operator endpoints (/status, /queries) and the admin endpoints (POST /queries/reset) require `Authorization: Bearer <token>`; when unset, admin endpoints answer only on loopback. /metrics, /healthz and /readyz stay open.',
      ),
  })
  .prefault({});

export const statsdSection = z
  .strictObject({
    enabled: z.boolean().default(false).describe('Send metrics to a StatsD agent too.'),
    host: host.default('127.0.0.1'),
    port: port.default(8125),
    prefix: z
      .string()
      .regex(/^[A-Za-z0-9_.-]*$/, { message: 'may hold only letters, digits, "_", "-" and "."' })
      .default('neo4j.')
      .describe('Prepended to every StatsD metric name.'),
    tagFormat: z
      .enum(['dogstatsd', 'telegraf', 'none'])
      .default('dogstatsd')
      .describe('dogstatsd: `|#k:v` tags; telegraf: `,k=v` tags; none: label values become name segments.'),
    sampleRate: z
      .number()
      .gt(0)
      .max(1)
      .default(1)
      .describe('Fraction of timing/histogram values sent; counters and gauges are always exact.'),
    maxBufferSize: z
      .number()
      .int()
      .min(0)
      .max(65000)
      .default(1400)
      .describe('Bytes buffered before a UDP packet is sent (0 sends each metric at once).'),
    flushIntervalMs: durationMs(50).default(1000).describe('How often counters, gauges and the buffer are flushed.'),
    packValues: z
      .boolean()
      .default(false)
      .describe(
        'DogStatsD only: pack many timing values of a series into one line (`name:1.2:3.4|ms`); needs Datadog agent >= 6.25/7.25. Cuts the per-query cost several times.',
      ),
  })
  .prefault({});

export const metricsSection = z
  .strictObject({
    maxSeriesPerMetric: z
      .number()
      .int()
      .min(10)
      .max(100000)
      .default(1000)
      .describe('Label sets per metric before new ones are folded into "other" (bounds memory and cardinality).'),
    processMetrics: z.boolean().default(true).describe("Export the sidecar's own Node.js process metrics."),
  })
  .prefault({});

export const logSection = z
  .strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    pretty: z
      .enum(['auto', 'always', 'never'])
      .default('auto')
      .describe('Human-readable logs; auto: only when stdout is a terminal, JSON otherwise.'),
  })
  .prefault({});

export const poolingSection = z
  .strictObject({
    mode: z
      .enum(['off', 'session', 'transaction'])
      .default('session')
      .describe(
        'off: one Neo4j connection per client connection, as without the sidecar. session: Neo4j connections are pooled and lent to a client connection for its life; the proxy answers the handshake and HELLO itself and every login is still verified by Neo4j (see authCacheSeconds). transaction: lent for one auto-commit query or one explicit transaction at a time, so many client connections share few Neo4j connections. Env: SIDECAR__PROXY__POOLING__MODE.',
      ),
    maxUpstreams: z
      .number()
      .int()
      .min(1)
      .max(100000)
      .default(100)
      .describe('Pooled Neo4j connections in total; a client that needs one more waits (acquireTimeoutMs).'),
    maxUpstreamsPerKey: z
      .number()
      .int()
      .min(1)
      .max(100000)
      .default(100)
      .describe(
        'Pooled Neo4j connections per key: Bolt version and HELLO settings (routing context, notification defaults, patch_bolt), plus the login before Bolt 5.1.',
      ),
    acquireTimeoutMs: durationMs(1)
      .default(30000)
      .describe(
        'How long a client waits for a pooled connection when all are in use; then it gets a transient Neo4j error (drivers retry).',
      ),
    minIdle: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe(
        'Idle connections kept per key (0: none). idleTimeoutMs never closes the last minIdle of a key (the most recently used are kept). Bolt 5.1+ keys (every 5.x and 6.x driver) used within idleTimeoutMs are also topped up to minIdle in the background with connections that have done HELLO but no login, so a burst of new clients pays one LOGON round trip instead of connect, TLS, handshake and HELLO; the proxy still keeps no credentials. Neo4j closes a connection left without a login after 30 s, so a pre-warmed one unused for 25 s is replaced. Before Bolt 5.1 the login is in HELLO and nothing is opened ahead of time.',
      ),
    idleTimeoutMs: durationMs(1000).default(600000).describe('An idle pooled connection unused this long is closed.'),
    maxLifetimeMs: durationMs(1000)
      .default(3000000)
      .describe(
        "A pooled connection is closed once this old (at its next return), each one's lifetime cut by up to 20% at random so a pool does not reconnect at once. The 50-minute default stays under the 60-minute idle cut of hosted Neo4j.",
      ),
    livenessCheckAfterIdleMs: durationMs(0)
      .default(30000)
      .describe('A connection idle this long is checked with a RESET before it is lent without a login round trip.'),
    authCacheSeconds: z
      .number()
      .int()
      .min(0)
      .max(3600)
      .default(0)
      .describe(
        '0: every client login is verified by Neo4j (LOGOFF+LOGON on the pooled connection, Bolt 5.1+; a fresh connection before 5.1). Above 0: a login Neo4j accepted on a pooled connection within this many seconds is answered by the proxy (a changed password keeps working that long). A refused login is never cached.',
      ),
    holdTimeoutMs: durationMs(0)
      .default(25000)
      .describe(
        "Longest a client is held instead of failed while Neo4j cannot be reached (refused, reset, unanswered, or DatabaseUnavailable while it starts) or the proxy is paused: a new login in either mode, and in transaction mode the next auto-commit query or BEGIN of a connected client (nothing already sent to Neo4j is ever held or replayed). Past it the client gets Neo.TransientError.General.DatabaseUnavailable, which managed transactions retry. 25 s covers a Neo4j restart (12-18 s measured) and stays under the drivers' 30 s managed-transaction retry budget, so a retry still follows a hold that ran out; that hold plus the retry's stays under their 60 s connection-acquisition timeout. 0: fail at once, as direct (pauses still hold, up to maxPauseMs).",
      ),
    maxPauseMs: durationMs(1000)
      .default(120000)
      .describe(
        'A pause (neo4j-pool-sidecar pause) left on this long ends by itself: the proxy resumes, logs a warning and counts it (neo4j_proxy_pool_pauses_expired_total). 2 minutes is several Neo4j restarts, and past holdTimeoutMs every client held by the pause has failed anyway, so a longer pause only fails work: it was forgotten.',
      ),
  })
  .prefault({});

export const proxySection = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Run the Bolt proxy.'),
    host: host.default('127.0.0.1').describe('Listen address of the Bolt proxy. Loopback by default.'),
    port: listenPort.default(7687),
    advertisedAddress: z
      .string()
      .regex(/^[^\s:]+:\d{1,5}$/, { message: 'must be host:port' })
      .optional()
      .describe('host:port written into routing tables for neo4j:// clients (default: host:port above).'),
    maxConnections: z
      .number()
      .int()
      .min(1)
      .max(100000)
      .default(1000)
      .describe('Client connections at once; more are refused and counted.'),
    handshakeTimeoutMs: durationMs(100)
      .default(10000)
      .describe('A client that has not finished the handshake by then is closed.'),
    maxMessageBytes: z
      .number()
      .int()
      .min(1024)
      .default(16 * 1024 * 1024)
      .describe(
        'Largest metadata-bearing message the proxy decodes; larger ones close that connection. A larger RUN (big parameters) is still forwarded, timed without its metadata.',
      ),
    shutdownGraceMs: durationMs(0)
      .default(10000)
      .describe(
        'On shutdown, how long client connections may finish in-flight queries and transactions before they are closed. Each client is closed at a transaction boundary (at once when it is between transactions, after its COMMIT or ROLLBACK is answered when it is in one); those still inside one after this long are cut off.',
      ),
    idleTransactionTimeoutMs: durationMs(0)
      .default(300_000)
      .describe(
        "A client that began an explicit transaction and then sent nothing for this long, with no request of its awaiting a reply, is closed: its transaction is rolled back on the upstream, it gets a Neo.ClientError.Transaction.TransactionTimedOut FAILURE naming this option, and it is counted in neo4j_proxy_idle_transaction_timeouts_total (pgbouncer's idle_transaction_timeout; 0 turns it off). Such a client (a hung task, a stopped process with its socket open) holds its locks, blocking every other writer of those nodes, and its upstream, for ever. The 5-minute default is far above the pause of a worker computing between two queries of one transaction (seconds) and the drivers' 30 s retry of a managed transaction, yet frees a dead task's locks within one alerting period; Neo4j's own db.transaction.timeout, off by default, bounds a transaction's whole life, busy or not, which this does not. Checked every idleTransactionTimeoutMs/10 (at least 100 ms, at most 5 s), so it fires up to that much late.",
      ),
    pooling: poolingSection,
  })
  .prefault({});

export const queryStatsSection = z
  .strictObject({
    enabled: z
      .boolean()
      .default(true)
      .describe(
        'Keep statistics per query fingerprint (literals replaced by ?), like pg_stat_statements: GET /queries, the `queries` command, a top-10 in /status.',
      ),
    topN: z
      .number()
      .int()
      .min(0)
      .max(500)
      .default(50)
      .describe(
        'Fingerprint x database entries by total time that get per-fingerprint metric series (query_id label); 0 exports none. Each takes 3 series of neo4j_query_fingerprint_duration_seconds: keep 3 x topN under metrics.maxSeriesPerMetric.',
      ),
    maxFingerprints: z
      .number()
      .int()
      .min(10)
      .max(100000)
      .default(1000)
      .describe(
        'Fingerprint x database entries kept (space-saving sketch capacity); the rest are folded into "other". Any query whose total time exceeds 1/maxFingerprints of all query time is guaranteed to be kept.',
      ),
    exportText: z
      .boolean()
      .default(false)
      .describe(
        'Export neo4j_query_fingerprint_info mapping query_id to the normalised text. Off by default: even with literals removed, query text may reveal schema.',
      ),
    metadataKey: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/, { message: 'must be a tx_metadata key (letters, digits, _ . -)' })
      .optional()
      .describe(
        'A tx_metadata key (e.g. task) whose value attributes each query: /queries shows the top values per fingerprint, the rest as "other".',
      ),
  })
  .prefault({});

export const configSchema = z
  .strictObject({
    neo4j: neo4jSection,
    http: httpSection,
    statsd: statsdSection,
    metrics: metricsSection,
    log: logSection,
    proxy: proxySection,
    queryStats: queryStatsSection,
    probes: probesSection,
    alerts: alertsSection,
  })
  .superRefine((config, context) => {
    churnWindowHoldsCensuses(config, context);
    topQueriesFitTheSeriesBound(config, context);
  });

/**
 * The census adds the connections opened since the previous census in one step, so a churn rate over
 * a window holding fewer than two censuses jumps with each one (up to twice the real rate with one per
 * window): the same mismatch between a threshold and its data's cadence as ProbeDown had.
 */
function churnWindowHoldsCensuses(
  config: { probes: ProbesConfig; alerts: AlertsConfig },
  context: z.RefinementCtx,
): void {
  const { probes } = config;
  const churn = config.alerts.thresholds.connectionChurn;
  if (!probes.enabled || !probes.census.enabled || !churn.enabled || !cron.validate(probes.schedule)) return;
  const censusIntervalMs = longestScheduleIntervalMs(probes.schedule) * probes.census.everyRuns;
  if (parsePrometheusDuration(churn.window) >= 2 * censusIntervalMs) return;
  context.addIssue({
    code: 'custom',
    path: ['alerts', 'thresholds', 'connectionChurn', 'window'],
    message: `must hold at least two censuses: 2 x the census interval (probes.schedule x probes.census.everyRuns = ${censusIntervalMs / 1000} s), or the rate jumps with each census`,
  });
}

/** Quantile series per exported fingerprint (p50, p95, p99 of neo4j_query_fingerprint_duration_seconds). */
const QUANTILE_SERIES_PER_FINGERPRINT = 3;

/**
 * The top-N fingerprints are exported as series of one metric; past metrics.maxSeriesPerMetric the
 * recorder folds the rest into "other", so part of the top N would silently vanish from dashboards.
 */
function topQueriesFitTheSeriesBound(
  config: { queryStats: { enabled: boolean; topN: number }; metrics: { maxSeriesPerMetric: number } },
  context: z.RefinementCtx,
): void {
  const { queryStats, metrics } = config;
  if (!queryStats.enabled || QUANTILE_SERIES_PER_FINGERPRINT * queryStats.topN <= metrics.maxSeriesPerMetric) return;
  context.addIssue({
    code: 'custom',
    path: ['queryStats', 'topN'],
    message: `${queryStats.topN} fingerprints take ${QUANTILE_SERIES_PER_FINGERPRINT * queryStats.topN} quantile series, over metrics.maxSeriesPerMetric (${metrics.maxSeriesPerMetric}): lower topN or raise the bound`,
  });
}

export type SidecarConfig = z.output<typeof configSchema>;
export type SidecarConfigInput = z.input<typeof configSchema>;
