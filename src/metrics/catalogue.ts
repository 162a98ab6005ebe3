/**
 * Every metric the sidecar exports, in one place: docs/metrics.md is checked against this list
 * and against what the Prometheus registry actually exposes.
 *
 * Pool metrics carry the Java driver's Micrometer names (`neo4j.driver.connections.*`) so
 * dashboards built for Java services carry over to the JavaScript and Python fleets.
 */
import {
  defineCounter,
  defineGauge,
  defineHistogram,
  LATENCY_BUCKETS_SECONDS,
  LIFETIME_BUCKETS_SECONDS,
  type MetricDefinition,
  QUERY_BUCKETS_SECONDS,
} from './definitions.ts';

const poolLabels = ['pool', 'address'] as const;
const bounded = ['pool'] as const;

export const pool = {
  inUse: defineGauge({
    name: 'neo4j_driver_connections_in_use',
    help: 'Connections checked out of the pool and in use by a session or transaction.',
    unit: 'connections',
    labelNames: poolLabels,
    boundedLabels: bounded,
    statsdName: 'driver.connections.in_use',
  }),
  idle: defineGauge({
    name: 'neo4j_driver_connections_idle',
    help: 'Open connections waiting in the pool.',
    unit: 'connections',
    labelNames: poolLabels,
    boundedLabels: bounded,
    statsdName: 'driver.connections.idle',
  }),
  creating: defineGauge({
    name: 'neo4j_driver_connections_creating',
    help: 'Connections being opened (TCP, TLS, Bolt handshake and authentication) right now.',
    unit: 'connections',
    labelNames: poolLabels,
    boundedLabels: bounded,
    statsdName: 'driver.connections.creating',
  }),
  acquiring: defineGauge({
    name: 'neo4j_driver_connections_acquiring',
    help: 'Callers waiting to acquire a connection from the pool right now.',
    unit: 'connections',
    labelNames: poolLabels,
    boundedLabels: bounded,
    statsdName: 'driver.connections.acquiring',
  }),
  max: defineGauge({
    name: 'neo4j_driver_connections_max',
    help: 'The pool size limit (maxConnectionPoolSize) per address.',
    unit: 'connections',
    labelNames: poolLabels,
    boundedLabels: bounded,
    statsdName: 'driver.connections.max',
  }),
  created: defineCounter({
    name: 'neo4j_driver_connections_created_total',
    help: 'Connections opened successfully.',
    unit: 'connections',
    labelNames: poolLabels,
    boundedLabels: bounded,
    statsdName: 'driver.connections.created',
  }),
  failed: defineCounter({
    name: 'neo4j_driver_connections_failed_total',
    help: 'Connection attempts that failed (refused, TLS, handshake or authentication errors).',
    unit: 'connections',
    labelNames: poolLabels,
    boundedLabels: bounded,
    statsdName: 'driver.connections.failed',
  }),
  closed: defineCounter({
    name: 'neo4j_driver_connections_closed_total',
    help: 'Connections closed by the pool (evicted, broken, too old, or pool closed).',
    unit: 'connections',
    labelNames: poolLabels,
    boundedLabels: bounded,
    statsdName: 'driver.connections.closed',
  }),
  acquisitionTimeouts: defineCounter({
    name: 'neo4j_driver_connections_acquisition_timeout_total',
    help: 'Acquisitions that failed with "Connection acquisition timed out".',
    unit: 'count',
    labelNames: poolLabels,
    boundedLabels: bounded,
    statsdName: 'driver.connections.acquisition_timeout',
  }),
  acquisitionSeconds: defineHistogram({
    name: 'neo4j_driver_connections_acquisition_seconds',
    help: 'Time from asking the pool for a connection to getting one (includes creating it when the pool had none idle).',
    unit: 'seconds',
    labelNames: poolLabels,
    boundedLabels: bounded,
    statsdName: 'driver.connections.acquisition',
    buckets: LATENCY_BUCKETS_SECONDS,
  }),
  creationSeconds: defineHistogram({
    name: 'neo4j_driver_connections_creation_seconds',
    help: 'Time to open a new connection: TCP connect, TLS, Bolt handshake and authentication.',
    unit: 'seconds',
    labelNames: poolLabels,
    boundedLabels: bounded,
    statsdName: 'driver.connections.creation',
    buckets: LATENCY_BUCKETS_SECONDS,
  }),
  usageSeconds: defineHistogram({
    name: 'neo4j_driver_connections_usage_seconds',
    help: 'Time a connection stayed checked out, from acquisition to release back to the pool.',
    unit: 'seconds',
    labelNames: poolLabels,
    boundedLabels: bounded,
    statsdName: 'driver.connections.usage',
    buckets: LIFETIME_BUCKETS_SECONDS,
  }),
};

export const query = {
  duration: defineHistogram({
    name: 'neo4j_query_duration_seconds',
    help: 'Query time from RUN to the last record or the error, excluding connection acquisition.',
    unit: 'seconds',
    labelNames: ['source', 'database', 'mode', 'outcome'] as const,
    boundedLabels: ['source', 'mode', 'outcome'] as const,
    statsdName: 'query.duration',
    buckets: QUERY_BUCKETS_SECONDS,
  }),
  errors: defineCounter({
    name: 'neo4j_query_errors_total',
    help: 'Failed queries by Neo4j status code (GQL status or Neo4j code, never the message).',
    unit: 'queries',
    labelNames: ['source', 'database', 'code'] as const,
    boundedLabels: ['source'] as const,
    statsdName: 'query.errors',
  }),
  inFlight: defineGauge({
    name: 'neo4j_queries_in_flight',
    help: 'Queries started and not yet finished.',
    unit: 'queries',
    labelNames: ['source'] as const,
    boundedLabels: ['source'] as const,
    statsdName: 'query.in_flight',
  }),
};

/**
 * Per-fingerprint statistics (src/querystats), exported only for the current top
 * queryStats.topN fingerprints by total time, so the query_id label stays bounded; a fingerprint
 * leaving the top N loses its series. The ids are short hashes of the normalised text; the text
 * itself is exported only by neo4j_query_fingerprint_info, off unless queryStats.exportText.
 */
const fingerprintLabels = ['query_id', 'database'] as const;

export const queryStats = {
  calls: defineCounter({
    name: 'neo4j_query_fingerprint_calls_total',
    help: 'Queries run per fingerprint (top queryStats.topN fingerprints by total time only).',
    unit: 'queries',
    labelNames: fingerprintLabels,
    statsdName: 'query.fingerprint.calls',
  }),
  errors: defineCounter({
    name: 'neo4j_query_fingerprint_errors_total',
    help: 'Failed queries per fingerprint (top queryStats.topN fingerprints by total time only).',
    unit: 'queries',
    labelNames: fingerprintLabels,
    statsdName: 'query.fingerprint.errors',
  }),
  seconds: defineCounter({
    name: 'neo4j_query_fingerprint_seconds_total',
    help: 'Time spent in queries per fingerprint, RUN to the last record or the error (top queryStats.topN fingerprints by total time only).',
    unit: 'seconds',
    labelNames: fingerprintLabels,
    statsdName: 'query.fingerprint.seconds',
  }),
  records: defineCounter({
    name: 'neo4j_query_fingerprint_records_total',
    help: 'Records streamed to clients per fingerprint (top queryStats.topN fingerprints by total time only).',
    unit: 'count',
    labelNames: fingerprintLabels,
    statsdName: 'query.fingerprint.records',
  }),
  quantile: defineGauge({
    name: 'neo4j_query_fingerprint_duration_seconds',
    help: 'Query time quantiles (0.5, 0.95, 0.99) per fingerprint since start or the last reset, estimated from neo4j_query_duration_seconds buckets (top queryStats.topN only).',
    unit: 'seconds',
    labelNames: ['query_id', 'database', 'quantile'] as const,
    boundedLabels: ['quantile'] as const,
    statsdName: 'query.fingerprint.duration',
  }),
  info: defineGauge({
    name: 'neo4j_query_fingerprint_info',
    help: 'Always 1; maps query_id to the normalised query text (literals as ?). Only with queryStats.exportText, since even normalised text may reveal schema.',
    unit: 'count',
    labelNames: ['query_id', 'query'] as const,
    statsdName: 'query.fingerprint.info',
  }),
};

export const sidecar = {
  buildInfo: defineGauge({
    name: 'neo4j_sidecar_build_info',
    help: 'Always 1; the labels say which sidecar and Node.js versions run.',
    unit: 'count',
    labelNames: ['version', 'node_version'] as const,
    boundedLabels: ['version', 'node_version'] as const,
    statsdName: 'sidecar.build_info',
  }),
  statsdSendErrors: defineCounter({
    name: 'neo4j_sidecar_statsd_send_errors_total',
    help: 'StatsD packets that could not be sent (the metrics are lost; queries are never affected).',
    unit: 'count',
    labelNames: [] as const,
    statsdName: 'sidecar.statsd.send_errors',
  }),
  credentialsRejected: defineGauge({
    name: 'neo4j_sidecar_credentials_rejected',
    help: "1 while Neo4j's refusal of the sidecar's credentials stands: the sidecar does not log in with them until a retry is due or the password file changes.",
    unit: 'count',
    labelNames: [] as const,
    statsdName: 'sidecar.credentials_rejected',
  }),
  credentialsRejectedSince: defineGauge({
    name: 'neo4j_sidecar_credentials_rejected_since_timestamp_seconds',
    help: "When Neo4j's standing refusal of the sidecar's credentials began (Unix time); 0 while they are not refused.",
    unit: 'seconds',
    labelNames: [] as const,
    statsdName: 'sidecar.credentials_rejected_since',
  }),
  credentialsRejections: defineCounter({
    name: 'neo4j_sidecar_credentials_rejections_total',
    help: "Times Neo4j refused the sidecar's credentials (the first refusal, then each failed retry), by reason: unauthorized (wrong password) or rate_limited (the user is locked after failed logins).",
    unit: 'count',
    labelNames: ['reason'] as const,
    boundedLabels: ['reason'] as const,
    statsdName: 'sidecar.credentials_rejections',
  }),
  seriesOverflow: defineCounter({
    name: 'neo4j_sidecar_series_overflow_total',
    help: 'Label sets folded into the value "other" because a metric reached its series limit.',
    unit: 'count',
    labelNames: ['metric'] as const,
    boundedLabels: ['metric'] as const,
    statsdName: 'sidecar.series_overflow',
  }),
};

/** Census buckets of connection age: short-lived connections (the per-task-driver pattern) land in the first ones. */
export const CONNECTION_AGE_BUCKETS_SECONDS: readonly number[] = [1, 10, 60, 300, 900, 3600, 21600, 86400];

export const probe = {
  duration: defineGauge({
    name: 'neo4j_probe_duration_seconds',
    help: 'How long the last run of a probe took (until its timeout when it timed out).',
    unit: 'seconds',
    labelNames: ['probe', 'database'] as const,
    boundedLabels: ['probe'] as const,
    statsdName: 'probe.duration',
  }),
  up: defineGauge({
    name: 'neo4j_probe_up',
    help: '1 when the last run of a probe succeeded, 0 when it failed.',
    unit: 'count',
    labelNames: ['probe', 'database'] as const,
    boundedLabels: ['probe'] as const,
    statsdName: 'probe.up',
  }),
  lastSuccess: defineGauge({
    name: 'neo4j_probe_last_success_timestamp_seconds',
    help: 'Unix time of the last successful run of a probe (the probes start time until one succeeds).',
    unit: 'seconds',
    labelNames: ['probe', 'database'] as const,
    boundedLabels: ['probe'] as const,
    statsdName: 'probe.last_success',
  }),
  interval: defineGauge({
    name: 'neo4j_probe_interval_seconds',
    help: 'Seconds between two scheduled runs of a probe: the longest gap of probes.schedule times its everyRuns. ProbeDown allows this on top of its threshold.',
    unit: 'seconds',
    labelNames: ['probe', 'database'] as const,
    boundedLabels: ['probe'] as const,
    statsdName: 'probe.interval',
  }),
  failures: defineCounter({
    name: 'neo4j_probe_failures_total',
    help: 'Failed probe runs by reason: timeout, auth, unavailable or other.',
    unit: 'count',
    labelNames: ['probe', 'database', 'reason'] as const,
    boundedLabels: ['probe', 'reason'] as const,
    statsdName: 'probe.failures',
  }),
};

export const census = {
  connections: defineGauge({
    name: 'neo4j_census_connections',
    help: 'Connections open on the Neo4j server at the last census, by connector and client user-agent family.',
    unit: 'connections',
    labelNames: ['connector', 'user_agent_family'] as const,
    boundedLabels: ['user_agent_family'] as const,
    statsdName: 'census.connections',
  }),
  clientConnections: defineGauge({
    name: 'neo4j_census_client_connections',
    help: 'Connections open on the Neo4j server at the last census by client host: the busiest hosts by name, the rest as "other".',
    unit: 'connections',
    labelNames: ['client_host'] as const,
    statsdName: 'census.client_connections',
  }),
  connectionsByAge: defineGauge({
    name: 'neo4j_census_connections_by_age',
    help: 'Connections open on the server at the last census that are at most `le` seconds old (cumulative, like histogram buckets).',
    unit: 'connections',
    labelNames: ['le'] as const,
    boundedLabels: ['le'] as const,
    statsdName: 'census.connections_by_age',
  }),
  connectionsOpened: defineCounter({
    name: 'neo4j_census_connections_opened_total',
    help: "Connections opened on the server, from the gaps in its connection ids between censuses (including ones that closed before a census saw them; the sidecar's own excluded).",
    unit: 'connections',
    labelNames: ['connector'] as const,
    boundedLabels: ['connector'] as const,
    statsdName: 'census.connections_opened',
  }),
  seesAllConnections: defineGauge({
    name: 'neo4j_census_sees_all_connections',
    help: "1 when the census user may see every connection and transaction (admin, or Community edition); 0 when it sees only its own user's.",
    unit: 'count',
    labelNames: [] as const,
    statsdName: 'census.sees_all_connections',
  }),
  longTransactions: defineGauge({
    name: 'neo4j_census_long_running_transactions',
    help: 'Transactions open longer than probes.census.longTransactionSeconds at the last census.',
    unit: 'count',
    labelNames: ['database'] as const,
    statsdName: 'census.long_running_transactions',
  }),
  oldestTransaction: defineGauge({
    name: 'neo4j_census_oldest_transaction_seconds',
    help: 'Age of the oldest open transaction at the last census (0 when none is open).',
    unit: 'seconds',
    labelNames: ['database'] as const,
    statsdName: 'census.oldest_transaction',
  }),
};

export const sizing = {
  needed: defineGauge({
    name: 'neo4j_driver_connections_needed',
    help: "Connections the measured load needs on average over probes.sizing.windowSeconds (Little's law: acquisitions per second x mean seconds held, or the mean sampled in-use count when higher); compare with neo4j_driver_connections_max.",
    unit: 'connections',
    labelNames: poolLabels,
    boundedLabels: bounded,
    statsdName: 'driver.connections.needed',
  }),
};

export const alerts = {
  active: defineGauge({
    name: 'neo4j_sidecar_alert_active',
    help: "1 while the sidecar's own evaluation of an alert threshold is firing, 0 otherwise (enabled alerts only).",
    unit: 'count',
    labelNames: ['alert', 'severity'] as const,
    boundedLabels: ['alert', 'severity'] as const,
    statsdName: 'sidecar.alert_active',
  }),
};

/** Queries carried per client connection: a fleet of per-task drivers piles up in the 1 and 2 buckets. */
export const QUERIES_PER_CONNECTION_BUCKETS: readonly number[] = [0, 1, 2, 3, 5, 10, 25, 100, 1000, 10000];

/**
 * The Bolt proxy's own view of its clients. Its queries go to neo4j_query_* with source="proxy". The
 * user_agent label is the client's driver family (neo4j-python/5, neo4j-java/6, ..., other, unknown before
 * HELLO), never the raw agent string, so it stays bounded whatever clients send.
 */
export const proxy = {
  clientConnectionsOpened: defineCounter({
    name: 'neo4j_proxy_client_connections_opened_total',
    help: 'Client connections accepted by the Bolt proxy, counted once the HELLO names the client (or at close, as user_agent="unknown", when none came).',
    unit: 'connections',
    labelNames: ['user_agent'] as const,
    boundedLabels: ['user_agent'] as const,
    statsdName: 'proxy.client_connections.opened',
  }),
  clientConnectionsClosed: defineCounter({
    name: 'neo4j_proxy_client_connections_closed_total',
    help: 'Client connections ended, by reason: client_closed, server_closed, shutdown (closed at a transaction boundary while the sidecar stops), shutdown_grace_over (still inside a query or transaction when proxy.shutdownGraceMs ran out), idle_transaction_timeout (see neo4j_proxy_idle_transaction_timeouts_total), or the problem that made the proxy close it (see neo4j_proxy_connections_rejected_total).',
    unit: 'connections',
    labelNames: ['user_agent', 'reason'] as const,
    boundedLabels: ['user_agent', 'reason'] as const,
    statsdName: 'proxy.client_connections.closed',
  }),
  idleTransactionTimeouts: defineCounter({
    name: 'neo4j_proxy_idle_transaction_timeouts_total',
    help: 'Clients closed by proxy.idleTransactionTimeoutMs, by driver family: each began an explicit transaction and then sent nothing for that long with no reply awaited (a hung task, a stopped process), so its transaction was rolled back and its locks and upstream freed. Any increase is a worker to look at.',
    unit: 'connections',
    labelNames: ['user_agent'] as const,
    boundedLabels: ['user_agent'] as const,
    statsdName: 'proxy.idle_transaction_timeouts',
  }),
  clientConnectionsActive: defineGauge({
    name: 'neo4j_proxy_client_connections_active',
    help: 'Client connections open through the Bolt proxy right now (each holds one upstream connection).',
    unit: 'connections',
    labelNames: [] as const,
    statsdName: 'proxy.client_connections.active',
  }),
  connectionsRejected: defineCounter({
    name: 'neo4j_proxy_connections_rejected_total',
    help: 'Client connections the proxy refused or cut off, by reason: limit, bad_handshake, handshake_timeout, framing, protocol_violation (a request Bolt does not allow there, such as one before logging in), message_too_large, undecodable_message, too_many_pending, out_of_step (a reply with no request waiting), upstream_unavailable, upstream_not_bolt, pool_timeout (no pooled Neo4j connection free in time), internal_error.',
    unit: 'connections',
    labelNames: ['reason'] as const,
    boundedLabels: ['reason'] as const,
    statsdName: 'proxy.connections.rejected',
  }),
  clientConnectionLifetime: defineHistogram({
    name: 'neo4j_proxy_client_connection_lifetime_seconds',
    help: 'How long client connections stayed open, from accept to close; per-task drivers show up as short lifetimes.',
    unit: 'seconds',
    labelNames: ['user_agent'] as const,
    boundedLabels: ['user_agent'] as const,
    statsdName: 'proxy.client_connection.lifetime',
    buckets: LIFETIME_BUCKETS_SECONDS,
  }),
  queriesPerConnection: defineHistogram({
    name: 'neo4j_proxy_queries_per_connection',
    help: 'Queries (RUN messages) a client connection carried before it closed; per-task drivers show up as 1 or 2.',
    unit: 'queries',
    labelNames: ['user_agent'] as const,
    boundedLabels: ['user_agent'] as const,
    statsdName: 'proxy.queries_per_connection',
    buckets: QUERIES_PER_CONNECTION_BUCKETS,
  }),
  authFailures: defineCounter({
    name: 'neo4j_proxy_auth_failures_total',
    help: 'Logins (HELLO before Bolt 5.1, LOGON after) that Neo4j refused; credentials are never decoded.',
    unit: 'count',
    labelNames: ['user_agent'] as const,
    boundedLabels: ['user_agent'] as const,
    statsdName: 'proxy.auth_failures',
  }),
  boltVersions: defineCounter({
    name: 'neo4j_proxy_bolt_versions_total',
    help: 'Client connections by the Bolt version client and server agreed on ("none" when they share none).',
    unit: 'connections',
    labelNames: ['version'] as const,
    boundedLabels: ['version'] as const,
    statsdName: 'proxy.bolt_versions',
  }),
  bytes: defineCounter({
    name: 'neo4j_proxy_bytes_total',
    help: 'Bytes forwarded, by direction: client_to_server or server_to_client.',
    unit: 'bytes',
    labelNames: ['direction'] as const,
    boundedLabels: ['direction'] as const,
    statsdName: 'proxy.bytes',
  }),
  messages: defineCounter({
    name: 'neo4j_proxy_messages_total',
    help: 'Bolt messages forwarded, by direction and message type (RUN, PULL, RECORD, SUCCESS, ..., UNKNOWN).',
    unit: 'messages',
    labelNames: ['direction', 'message'] as const,
    boundedLabels: ['direction', 'message'] as const,
    statsdName: 'proxy.messages',
  }),
  routingTablesRewritten: defineCounter({
    name: 'neo4j_proxy_routing_tables_rewritten_total',
    help: "Routing tables rewritten to the proxy's advertised address, by how the client asked: ROUTE or procedure (Bolt 3 to 4.2).",
    unit: 'count',
    labelNames: ['via'] as const,
    boundedLabels: ['via'] as const,
    statsdName: 'proxy.routing_tables_rewritten',
  }),
  upstreamConnectSeconds: defineHistogram({
    name: 'neo4j_proxy_upstream_connect_seconds',
    help: 'Time to open an upstream connection to Neo4j (TCP, plus TLS for +s URIs): one per client connection with pooling off, one per pooled connection opened otherwise.',
    unit: 'seconds',
    labelNames: [] as const,
    statsdName: 'proxy.upstream_connect',
    buckets: LATENCY_BUCKETS_SECONDS,
  }),
};

/** Times one pooled upstream served a client again before it closed. */
export const REUSES_PER_UPSTREAM_BUCKETS: readonly number[] = [0, 1, 5, 10, 50, 100, 500, 1000, 10000, 100000];

/**
 * The proxy's pool of upstream connections (proxy.pooling.mode session or transaction). No label ever
 * carries a user name: logins are counted by outcome only.
 */
export const proxyPool = {
  upstreams: defineGauge({
    name: 'neo4j_proxy_pool_upstreams',
    help: 'Pooled connections to Neo4j by state: idle (ready to lend, pre-warmed ones with no login yet included), in_use (lent to a client), opening (connecting, handshake, HELLO), resetting (RESET, LOGOFF+LOGON or a liveness check under way).',
    unit: 'connections',
    labelNames: ['state'] as const,
    boundedLabels: ['state'] as const,
    statsdName: 'proxy.pool.upstreams',
  }),
  clientsWaiting: defineGauge({
    name: 'neo4j_proxy_pool_clients_waiting',
    help: 'Client connections waiting for a pooled Neo4j connection (all proxy.pooling.maxUpstreams or maxUpstreamsPerKey in use).',
    unit: 'connections',
    labelNames: [] as const,
    statsdName: 'proxy.pool.clients_waiting',
  }),
  checkouts: defineCounter({
    name: 'neo4j_proxy_pool_checkouts_total',
    help: 'Upstreams handed to clients, by result: reused (idle, login cached), reauthenticated (idle, login verified by Neo4j: LOGOFF+LOGON, or LOGON alone on one pre-warmed by minIdle), opened (new connection), timed_out (none free within acquireTimeoutMs; the client got a transient error).',
    unit: 'count',
    labelNames: ['result'] as const,
    boundedLabels: ['result'] as const,
    statsdName: 'proxy.pool.checkouts',
  }),
  waitSeconds: defineHistogram({
    name: 'neo4j_proxy_pool_wait_seconds',
    help: 'Time from a client asking for an upstream to getting one (or timing out), login round trip included.',
    unit: 'seconds',
    labelNames: [] as const,
    statsdName: 'proxy.pool.wait',
    buckets: LATENCY_BUCKETS_SECONDS,
  }),
  upstreamsClosed: defineCounter({
    name: 'neo4j_proxy_pool_upstreams_closed_total',
    help: 'Pooled upstreams closed, by reason: idle_timeout, max_lifetime, reset_failed, client_left_mid_message, client_changed_login, single_use_login (login in HELLO, cache off), login_refused, abandoned, evicted, server_closed, server_changed, unauthenticated_timeout (pre-warmed by minIdle and not used within 25 s, closed before Neo4j closes a connection left without login), no_answer (a step of opening it or an exchange the pool makes itself went unanswered for neo4j.connectionTimeoutMs), database_unavailable (Neo4j answered HELLO or LOGON with DatabaseUnavailable while starting; the client was held, not failed), reconnect (opened before a reconnect and closed at its next return), shutdown.',
    unit: 'connections',
    labelNames: ['reason'] as const,
    boundedLabels: ['reason'] as const,
    statsdName: 'proxy.pool.upstreams_closed',
  }),
  reusesPerUpstream: defineHistogram({
    name: 'neo4j_proxy_pool_reuses_per_upstream',
    help: 'Times a pooled upstream was lent again before it closed (one never lent, such as an unused pre-warmed one, is not counted); high values mean the pool saves Neo4j logins.',
    unit: 'count',
    labelNames: [] as const,
    statsdName: 'proxy.pool.reuses_per_upstream',
    buckets: REUSES_PER_UPSTREAM_BUCKETS,
  }),
  clientsHeld: defineGauge({
    name: 'neo4j_proxy_pool_clients_held',
    help: 'Client connections held instead of lent a Neo4j connection, by reason: outage (Neo4j unreachable; the pool retries it itself), paused (the proxy is paused for maintenance) or no_writer (cluster routing: a write while the routing table names no reachable writer; the table is refreshed with backoff). Each is held at most proxy.pooling.holdTimeoutMs.',
    unit: 'connections',
    labelNames: ['reason'] as const,
    boundedLabels: ['reason'] as const,
    statsdName: 'proxy.pool.clients_held',
  }),
  holds: defineCounter({
    name: 'neo4j_proxy_pool_holds_total',
    help: 'Holds that ended, by reason (outage, paused, no_writer) and outcome: released (the client went on to Neo4j), timed_out (held proxy.pooling.holdTimeoutMs; the client got DatabaseUnavailable, which drivers retry), client_left, shutdown.',
    unit: 'count',
    labelNames: ['reason', 'outcome'] as const,
    boundedLabels: ['reason', 'outcome'] as const,
    statsdName: 'proxy.pool.holds',
  }),
  holdSeconds: defineHistogram({
    name: 'neo4j_proxy_pool_hold_seconds',
    help: 'How long a client was held (paused, Neo4j unreachable, or no cluster writer known), whatever the outcome, by reason.',
    unit: 'seconds',
    labelNames: ['reason'] as const,
    boundedLabels: ['reason'] as const,
    statsdName: 'proxy.pool.hold',
    buckets: LATENCY_BUCKETS_SECONDS,
  }),
  paused: defineGauge({
    name: 'neo4j_proxy_pool_paused',
    help: '1 while the proxy is paused for maintenance (new work held, lent connections left to finish), else 0.',
    unit: 'count',
    labelNames: [] as const,
    statsdName: 'proxy.pool.paused',
  }),
  pausedSince: defineGauge({
    name: 'neo4j_proxy_pool_paused_since_timestamp_seconds',
    help: 'When the current pause began (Unix time); 0 while not paused.',
    unit: 'seconds',
    labelNames: [] as const,
    statsdName: 'proxy.pool.paused_since',
  }),
  pausesExpired: defineCounter({
    name: 'neo4j_proxy_pool_pauses_expired_total',
    help: 'Pauses that reached proxy.pooling.maxPauseMs and were ended by the proxy itself (a pause forgotten, or a maintenance overrunning).',
    unit: 'count',
    labelNames: [] as const,
    statsdName: 'proxy.pool.pauses_expired',
  }),
  neo4jReachable: defineGauge({
    name: 'neo4j_proxy_pool_neo4j_reachable',
    help: "1 while the pool can open connections to Neo4j; 0 from a failed open (refused, reset, unanswered, or DatabaseUnavailable while starting) until the pool's own retry gets through.",
    unit: 'count',
    labelNames: [] as const,
    statsdName: 'proxy.pool.neo4j_reachable',
  }),
  logins: defineCounter({
    name: 'neo4j_proxy_pool_logins_total',
    help: 'Client logins through the pool, by outcome: verified (Neo4j accepted them on an upstream), cached (accepted by Neo4j on this upstream within authCacheSeconds), refused (Neo4j refused them; never cached).',
    unit: 'count',
    labelNames: ['outcome'] as const,
    boundedLabels: ['outcome'] as const,
    statsdName: 'proxy.pool.logins',
  }),
};

/** Cluster routing (neo4j:// upstream, transaction mode): the proxy's routing tables and the members it lends from. */
export const proxyRouting = {
  refreshes: defineCounter({
    name: 'neo4j_proxy_routing_refreshes_total',
    help: 'Routing tables fetched with ROUTE, by reason (first, expired: its TTL ran out, no_writer / no_reader: the role had no reachable member left, not_a_leader / forbidden_on_read_only: the writer refused a write) and outcome (ok, failed: no router answered, or it answered a FAILURE).',
    unit: 'count',
    labelNames: ['reason', 'outcome'] as const,
    boundedLabels: ['reason', 'outcome'] as const,
    statsdName: 'proxy.routing.refreshes',
  }),
  failovers: defineCounter({
    name: 'neo4j_proxy_routing_failovers_total',
    help: 'Members dropped from a routing table until the next refresh, by the role they had: writer, reader or router (connection refused, reset or unanswered; a writer also for NotALeader or ForbiddenOnReadOnlyDatabase).',
    unit: 'count',
    labelNames: ['role'] as const,
    boundedLabels: ['role'] as const,
    statsdName: 'proxy.routing.failovers',
  }),
  members: defineGauge({
    name: 'neo4j_proxy_routing_members',
    help: 'Cluster members in the routing tables as the proxy last saw them, by role (writer, reader, router); a member failing drops out until the next refresh.',
    unit: 'count',
    labelNames: ['role'] as const,
    boundedLabels: ['role'] as const,
    statsdName: 'proxy.routing.members',
  }),
  units: defineCounter({
    name: 'neo4j_proxy_routing_units_total',
    help: 'Units of work (an auto-commit query or an explicit transaction) lent an upstream on a cluster member, by member (host:port from the routing table; folded into "other" past the label cap) and access (read, write).',
    unit: 'count',
    labelNames: ['member', 'access'] as const,
    boundedLabels: ['access'] as const,
    statsdName: 'proxy.routing.units',
  }),
  memberUpstreams: defineGauge({
    name: 'neo4j_proxy_routing_member_upstreams',
    help: 'Pooled upstreams to each cluster member by state (idle, in_use, opening, resetting); member as in neo4j_proxy_routing_units_total.',
    unit: 'connections',
    labelNames: ['member', 'state'] as const,
    boundedLabels: ['state'] as const,
    statsdName: 'proxy.routing.member_upstreams',
  }),
  memberReachable: defineGauge({
    name: 'neo4j_proxy_routing_member_reachable',
    help: "1 while the proxy's pool for a cluster member can open connections to it, 0 from a failed open until the pool's own retry gets through.",
    unit: 'count',
    labelNames: ['member'] as const,
    statsdName: 'proxy.routing.member_reachable',
  }),
};

/** Every metric definition, in the order docs/metrics.md lists them. */
export const allMetrics: readonly MetricDefinition[] = [
  ...Object.values(pool),
  ...Object.values(query),
  ...Object.values(queryStats),
  ...Object.values(sidecar),
  ...Object.values(probe),
  ...Object.values(census),
  ...Object.values(sizing),
  ...Object.values(alerts),
  ...Object.values(proxy),
  ...Object.values(proxyPool),
  ...Object.values(proxyRouting),
];
