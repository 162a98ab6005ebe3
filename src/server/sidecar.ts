/**
 * The composition root: builds the recorder and its exporters, the sidecar's own driver, the
 * HTTP server and the optional components (Bolt proxy, probes), starts them in order and stops
 * them in reverse, readiness false first so traffic is routed away while they drain. Sources feed the recorder; the recorder feeds the exporters; nothing flows back.
 */
import type { AddressInfo } from 'node:net';
import type { Driver } from 'neo4j-driver';
import { AdminTokenFile, maskConfig, type SidecarConfig } from '../config/index.ts';
import { type Component, type ComponentFactory, SIDECAR_VERSION, type SidecarContext } from '../contracts.ts';
import { CredentialsGate, createSidecarDriver, DriverLog, REJECTION_REASONS } from '../driver/index.ts';
import { instrumentDriver, poolStateGauges } from '../instrument/index.ts';
import { type Logger, rateLimited } from '../logger.ts';
import {
  PrometheusSink,
  Recorder,
  registerProcessMetrics,
  StatsdSink,
  sidecar as sidecarMetrics,
} from '../metrics/index.ts';
import { describeFailure } from '../probe/outcome.ts';
import { isBoltProxyComponent } from '../proxy/index.ts';
import { exportTopQueries, QueryStatistics } from '../querystats/index.ts';
import { AdminAccess } from './admin-access.ts';
import { createHttpServer, type Readiness } from './http.ts';
import { Neo4jCheck } from './neo4j-check.ts';

export interface StartSidecarOptions {
  logger: Logger;
  components?: readonly ComponentFactory[];
}

export interface RunningSidecar {
  readonly recorder: Recorder;
  readonly prometheus: PrometheusSink;
  readonly driver: Driver;
  /** Where /metrics and the other endpoints listen. */
  readonly httpAddress: AddressInfo;
  readonly components: readonly Component[];
  stop(): Promise<void>;
}

/** How often the background check asks Neo4j whether it answers. */
const NEO4J_CHECK_INTERVAL_MS = 2000;
/**
 * An unanswered check makes /readyz 503 after this long: well under the chart's readinessProbe
 * timeout (5 s), well over a healthy round trip on a busy machine (~150 ms).
 */
const NEO4J_CHECK_DEADLINE_MS = 2000;
/** Components answer readiness from their own state; one that does not at once counts as not ready. */
const COMPONENT_READINESS_MS = 250;

function answerWithin(
  answer: Promise<{ ok: boolean; detail?: string }>,
  name: string,
): Promise<{ ok: boolean; detail?: string }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<{ ok: boolean; detail: string }>((resolve) => {
    timer = setTimeout(
      () =>
        resolve({
          ok: false,
          detail: `${name} did not answer its readiness check within ${COMPONENT_READINESS_MS} ms`,
        }),
      COMPONENT_READINESS_MS,
    );
  });
  const settled = answer.catch((error: unknown) => ({ ok: false, detail: describeFailure(error) }));
  return Promise.race([settled, late]).finally(() => clearTimeout(timer));
}

/**
 * The gate of every login the sidecar makes (credentials.ts), reporting to the recorder. It verifies
 * credentials with one login on a pool-of-one driver of its own, so the verdict is about a login and
 * not about a pooled connection that authenticated long ago.
 */
function createCredentialsGate(
  config: SidecarConfig,
  logger: Logger,
  driverLog: DriverLog,
  recorder: Recorder,
): CredentialsGate {
  const rejected = recorder.gauge(sidecarMetrics.credentialsRejected);
  const rejections = recorder.counter(sidecarMetrics.credentialsRejections);
  const rejectedSince = recorder.gauge(sidecarMetrics.credentialsRejectedSince);
  rejectedSince.set({}, 0);
  rejected.set({}, 0);
  for (const reason of Object.values(REJECTION_REASONS)) rejections.bind({ reason });
  /** When the current refusal began (epoch seconds), 0 while the credentials are not refused. */
  let refusedSinceSeconds = 0;
  const verifyConfig = { ...config, neo4j: { ...config.neo4j, maxConnectionPoolSize: 1 } };
  return new CredentialsGate({
    username: config.neo4j.username,
    password: config.neo4j.password,
    passwordFile: config.neo4j.passwordFile,
    retryInitialMs: config.neo4j.authRetryInitialMs,
    retryMaxMs: config.neo4j.authRetryMaxMs,
    verifyTimeoutMs: config.neo4j.connectionTimeoutMs,
    logger,
    verify: async (auth) => {
      const verifier = createSidecarDriver(verifyConfig, driverLog, auth);
      try {
        await verifier.getServerInfo();
      } finally {
        await verifier.close();
      }
    },
    observer: {
      rejected: (reason) => rejections.inc({ reason }),
      changed: (state) => {
        rejected.set({}, state === 'rejected' ? 1 : 0);
        // A new password being verified does not end the refusal; only an acceptance does.
        if (state === 'rejected' && refusedSinceSeconds === 0) refusedSinceSeconds = Date.now() / 1000;
        if (state === 'accepted') refusedSinceSeconds = 0;
        rejectedSince.set({}, refusedSinceSeconds);
      },
    },
  });
}

export async function startSidecar(config: SidecarConfig, options: StartSidecarOptions): Promise<RunningSidecar> {
  const logger = options.logger;
  const prometheus = new PrometheusSink();
  const stopProcessMetrics = config.metrics.processMetrics
    ? registerProcessMetrics(prometheus.registry, { prefix: 'neo4j_sidecar_' })
    : () => {};
  const statsd = config.statsd.enabled
    ? new StatsdSink({
        host: config.statsd.host,
        port: config.statsd.port,
        prefix: config.statsd.prefix,
        tagFormat: config.statsd.tagFormat,
        sampleRate: config.statsd.sampleRate,
        maxBufferSize: config.statsd.maxBufferSize,
        flushIntervalMs: config.statsd.flushIntervalMs,
        packValues: config.statsd.packValues,
        onSendError: (() => {
          const warn = rateLimited((fields, message) => logger.warn(fields, message), 60_000);
          return (error: Error) => warn({ component: 'statsd', err: error }, 'StatsD send failed');
        })(),
      })
    : undefined;
  const reportRecorderError = rateLimited((fields, message) => logger.warn(fields, message), 60_000);
  const queryStats = config.queryStats.enabled
    ? new QueryStatistics({
        maxFingerprints: config.queryStats.maxFingerprints,
        metadataKey: config.queryStats.metadataKey ?? null,
      })
    : undefined;
  const recorder = new Recorder({
    sinks: statsd ? [prometheus, statsd] : [prometheus],
    maxSeriesPerMetric: config.metrics.maxSeriesPerMetric,
    ...(queryStats ? { queryStats } : {}),
    onError: (error) => reportRecorderError({ component: 'recorder', err: error }, 'metric not recorded'),
  });
  recorder.gauge(sidecarMetrics.buildInfo).set({ version: SIDECAR_VERSION, node_version: process.version }, 1);
  const stopQueryExport =
    queryStats && config.queryStats.topN > 0
      ? exportTopQueries(recorder, queryStats, {
          topN: config.queryStats.topN,
          exportText: config.queryStats.exportText,
        })
      : () => {};

  const driverLog = new DriverLog(logger);
  const credentials = createCredentialsGate(config, logger, driverLog, recorder);
  const driver = createSidecarDriver(config, driverLog, credentials.authTokenManager);
  const ownPool = instrumentDriver(driver, {
    recorder,
    poolName: 'sidecar',
    source: 'sidecar',
    // Its census, readiness and probe queries are the monitor's, not the workers': they keep their
    // query metrics (source "sidecar") but stay out of the statistics /queries ranks.
    queryStats: null,
    onWarning: (message) => logger.warn({ component: 'instrument' }, message),
  });

  const context: SidecarContext = { config, recorder, driver, ownPool, credentials, driverLog, logger, statsd };
  const components = (options.components ?? [])
    .map((factory) => factory(context))
    .filter((component): component is Component => component !== undefined);

  // /readyz answers from kept state: this background check's last result and the components' own
  // (the probes' last run), never from a Neo4j round trip of the request's own (see neo4j-check.ts).
  const neo4jCheck = new Neo4jCheck({
    intervalMs: NEO4J_CHECK_INTERVAL_MS,
    deadlineMs: NEO4J_CHECK_DEADLINE_MS,
    // A query, not getServerInfo(): that skips its RESET on a connection whose last message was the
    // login, so on a connection nothing else used it answered "ok" from a frozen server.
    check: () =>
      credentials.run(async () => {
        const session = driver.session({ defaultAccessMode: 'READ' });
        try {
          const { summary } = await session.run('RETURN 1 AS readiness');
          driverLog.answered();
          return `${summary.server.agent ?? 'Neo4j'} at ${summary.server.address ?? maskConfig(config).neo4j.uri}`;
        } finally {
          await session.close();
        }
      }),
    describe: describeFailure,
  });
  /** Set first thing on stop: /readyz answers 503 from then on while the proxy drains (/healthz stays 200). */
  let shuttingDown = false;
  const readiness = async (): Promise<Readiness> => {
    // Kubernetes takes the pod out of its Services on this answer while in-flight work finishes.
    if (shuttingDown) return { ready: false, reason: 'shutting down: finishing in-flight work' };
    // A refusal of the credentials is the reason, not the "not reachable" its refused checks would say.
    const neo4jState = credentials.state === 'rejected' ? credentials.readiness() : neo4jCheck.current();
    const checks: Record<string, { ok: boolean; detail?: string }> = { neo4j: neo4jState };
    for (const component of components) {
      if (component.readiness) checks[component.name] = await answerWithin(component.readiness(), component.name);
    }
    const failing = Object.entries(checks).filter(([, check]) => !check.ok);
    return {
      ready: failing.length === 0,
      ...(failing.length > 0 ? { reason: failing.map(([name, check]) => `${name}: ${check.detail}`).join('; ') } : {}),
      checks,
    };
  };

  const status = () => ({
    version: SIDECAR_VERSION,
    uptimeSeconds: Math.round(process.uptime()),
    config: maskConfig(config),
    pools: poolStatus(recorder),
    ...(queryStats ? { queries: queryStatus(queryStats) } : {}),
    credentials: credentials.status(),
    ...Object.fromEntries(
      components.filter((component) => component.status).map((component) => [component.name, component.status!()]),
    ),
  });

  const http = createHttpServer({
    prometheus,
    readiness,
    status,
    logger,
    access: new AdminAccess(config.http.adminTokenFile ? new AdminTokenFile(config.http.adminTokenFile) : null),
    ...(queryStats ? { queries: queryStats } : {}),
    proxy: () => components.find(isBoltProxyComponent)?.proxy,
  });
  const started: Component[] = [];
  credentials.onChange(() => neo4jCheck.refreshNow());
  credentials.start();
  neo4jCheck.start();
  try {
    for (const component of components) {
      await component.start();
      started.push(component);
    }
    await http.listen({ host: config.http.host, port: config.http.port });
  } catch (error) {
    neo4jCheck.stop();
    credentials.stop();
    await Promise.allSettled(started.reverse().map((component) => component.stop()));
    await http.close();
    await driver.close();
    stopQueryExport();
    await recorder.close();
    stopProcessMetrics();
    throw error;
  }
  const httpAddress = http.server.address() as AddressInfo;
  logger.info(
    { http: `${httpAddress.address}:${httpAddress.port}`, neo4j: maskConfig(config).neo4j.uri },
    'neo4j-pool-sidecar started',
  );

  let stopping: Promise<void> | undefined;
  const stop = () => {
    shuttingDown = true;
    stopping ??= (async () => {
      logger.info('stopping: not ready any more, no new connections, finishing in-flight work');
      for (const component of [...components].reverse()) {
        try {
          await component.stop();
        } catch (error) {
          logger.warn({ component: component.name, err: error }, 'component did not stop cleanly');
        }
      }
      await http.close();
      neo4jCheck.stop();
      credentials.stop();
      await driver.close();
      await recorder.close();
      stopQueryExport();
      stopProcessMetrics();
      logger.info('stopped');
    })();
    return stopping;
  };
  return { recorder, prometheus, driver, httpAddress, components, stop };
}

/** The /status block: the ten queries with the most total time, the way `neo4j-pool-sidecar queries` shows them. */
function queryStatus(statistics: QueryStatistics): Record<string, unknown> {
  const snapshot = statistics.snapshot({ sort: 'total', limit: 10 });
  return {
    since: snapshot.since,
    entries: snapshot.entries,
    totalCalls: snapshot.totalCalls,
    totalSeconds: snapshot.totalSeconds,
    top: snapshot.queries.map((row) => ({
      id: row.id,
      query: row.query,
      database: row.database,
      calls: row.calls,
      errors: row.errors,
      totalSeconds: row.totalSeconds,
      meanSeconds: row.meanSeconds,
      p95Seconds: row.p95Seconds,
      records: row.records,
    })),
  };
}

/**
 * Current pool gauges grouped by pool and address, for /status. Read back from the recorder on
 * purpose: the table shows every pool that reports to it (the sidecar's own, any driver
 * a library user instrumented on the same recorder, like npm start's demo worker), the same numbers a
 * scrape of /metrics shows, and the samplers refresh them from the live pools just before.
 */
function poolStatus(recorder: Recorder): Array<Record<string, string | number>> {
  recorder.sample();
  const rows = new Map<string, Record<string, string | number>>();
  for (const [field, gauge] of Object.entries(poolStateGauges(recorder))) {
    for (const series of gauge.snapshot()) {
      const key = `${series.labels.pool}\u0000${series.labels.address}`;
      const row = rows.get(key) ?? { pool: series.labels.pool ?? '', address: series.labels.address ?? '' };
      row[field] = series.value;
      rows.set(key, row);
    }
  }
  return [...rows.values()];
}
