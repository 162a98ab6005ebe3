/**
 * In-process instrumentation of a neo4j-driver Driver: what the Java driver's
 * ConnectionPoolMetrics offers, for the JavaScript driver, plus per-query timing.
 *
 * Queries are timed at the connection (RUN to the last record or the error), so every API that
 * runs Cypher (executeQuery, session.run, executeRead/Write, explicit transactions, RxSession)
 * is covered exactly once, and acquisition time is measured separately by the pool wrapper.
 */

import {
  type BeginConfig,
  type CompletionMetadata,
  type ConnectionLike,
  findPool,
  isConnectionLike,
  type PoolInternals,
  type RunConfig,
  type ServerAddressLike,
} from '../driver/internals.ts';
import { pool as poolMetrics, query as queryMetrics } from '../metrics/catalogue.ts';
import { HOME_DATABASE_LABEL, HomeDatabases } from '../metrics/home-databases.ts';
import type { QuerySink } from '../metrics/query-sink.ts';
import type { Recorder } from '../metrics/recorder.ts';

export interface InstrumentOptions {
  recorder: Recorder;
  /** The `pool` label: name each driver of a process differently. Default `default`. */
  poolName?: string;
  /** The `source` label of query metrics. Default `driver`. */
  source?: string;
  /** Told once when the driver's internals are not what instrumentation expects. */
  onWarning?: (message: string) => void;
  /**
   * Where this driver's finished queries go with their text, for per-fingerprint statistics. Default:
   * the recorder's (`queryStats` of its options). null keeps them out: the sidecar's own driver, whose
   * census, readiness and probe queries must not rank among the workers' queries.
   */
  queryStats?: QuerySink | null;
}

export interface InstrumentedDriver {
  readonly poolName: string;
  /** False when the pool internals were not found: query metrics still work, pool metrics do not. */
  readonly poolObserved: boolean;
  /** Connections the pool has opened since it was instrumented (0 when the pool is not observed). */
  connectionsOpened(): number;
  /** Stops sampling pool gauges and removes their series (also done when the driver closes). */
  detach(): void;
}

/** The gauges a pool's live state is sampled into, by field name (also the /status columns). */
export const POOL_STATE_GAUGES = {
  inUse: poolMetrics.inUse,
  idle: poolMetrics.idle,
  creating: poolMetrics.creating,
  acquiring: poolMetrics.acquiring,
  max: poolMetrics.max,
} as const;

export function poolStateGauges(recorder: Recorder) {
  return {
    inUse: recorder.gauge(POOL_STATE_GAUGES.inUse),
    idle: recorder.gauge(POOL_STATE_GAUGES.idle),
    creating: recorder.gauge(POOL_STATE_GAUGES.creating),
    acquiring: recorder.gauge(POOL_STATE_GAUGES.acquiring),
    max: recorder.gauge(POOL_STATE_GAUGES.max),
  };
}

const ACQUISITION_TIMEOUT_MESSAGE = 'Connection acquisition timed out';
const INSTRUMENTED = Symbol.for('neo4j-pool-sidecar.instrumented');
const DRIVER_SOURCE_FALLBACK = 'driver';

/** Neo4j status codes are `Neo.Class.Category.Title`; anything else is folded so labels stay bounded. */
export function errorCodeLabel(error: unknown): string {
  const candidate = error as { code?: unknown; gqlStatus?: unknown } | undefined;
  const code = typeof candidate?.code === 'string' ? candidate.code : undefined;
  if (code && /^[A-Za-z][A-Za-z0-9._-]{0,99}$/.test(code) && code !== 'N/A') return code;
  const gqlStatus = typeof candidate?.gqlStatus === 'string' ? candidate.gqlStatus : undefined;
  if (gqlStatus && /^[0-9A-Z]{5}$/.test(gqlStatus)) return gqlStatus;
  if (error instanceof Error && error.message.startsWith(ACQUISITION_TIMEOUT_MESSAGE)) return 'AcquisitionTimeout';
  return 'unknown';
}

function modeLabel(mode: string | undefined): 'read' | 'write' {
  return mode === 'READ' ? 'read' : 'write';
}

/**
 * The database a query ran on: its completion's db, else the one it named; a query that named none
 * teaches its user's home database when it completes, and a failing one (no completion) is listed
 * under the home database learnt before.
 */
function databaseLabel(
  requested: string | undefined,
  metadata: CompletionMetadata | undefined,
  homes: HomeDatabases,
  user: string,
): string {
  const ran = typeof metadata?.db === 'string' && metadata.db !== '' ? metadata.db : undefined;
  if (requested) return ran ?? requested;
  if (ran !== undefined) {
    homes.set(user, ran);
    return ran;
  }
  return homes.get(user) ?? HOME_DATABASE_LABEL;
}

/** Whose home database a query uses: the impersonated user's, else ('') the driver's own user's. */
function homeUserOf(config: Readonly<Record<string, unknown>> | undefined): string {
  const user = config?.impersonatedUser;
  return typeof user === 'string' ? user : '';
}

/**
 * Wraps a connection's run/beginTransaction so each query is timed. A connection runs one
 * transaction at a time, so the database and mode given to BEGIN apply to the RUNs that follow.
 */
function instrumentConnection(
  connection: ConnectionLike,
  recorder: Recorder,
  source: string,
  statistics: QuerySink | undefined,
  homes: HomeDatabases,
): void {
  const marked = connection as ConnectionLike & { [INSTRUMENTED]?: true };
  if (marked[INSTRUMENTED]) return;
  marked[INSTRUMENTED] = true;

  const duration = recorder.histogram(queryMetrics.duration);
  const errors = recorder.counter(queryMetrics.errors);
  const inFlight = recorder.gauge(queryMetrics.inFlight);
  const inFlightLabels = { source };
  const metadataKey = statistics?.metadataKey ?? null;
  let transaction: BeginConfig | undefined;

  const originalRun = connection.run;
  const originalBegin = connection.beginTransaction;
  const originalCommit = connection.commitTransaction;
  const originalRollback = connection.rollbackTransaction;

  connection.beginTransaction = function (config?: BeginConfig) {
    transaction = config;
    return originalBegin.call(this, config);
  };
  connection.commitTransaction = function (config?: unknown) {
    transaction = undefined;
    return originalCommit.call(this, config);
  };
  connection.rollbackTransaction = function (config?: unknown) {
    transaction = undefined;
    return originalRollback.call(this, config);
  };
  connection.run = function (queryText: unknown, parameters: unknown, config?: RunConfig) {
    const started = performance.now();
    const mode = modeLabel(config?.mode ?? transaction?.mode);
    const requestedDatabase = config?.database ?? transaction?.database;
    const homeUser = homeUserOf(transaction ?? config);
    let finished = false;
    let records = 0;
    // Inside a transaction the metadata went with BEGIN (a RUN there carries an empty config); read it
    // now, since the transaction may be committed before this query's completion is seen.
    const attribution =
      metadataKey === null
        ? null
        : attributionOf(transaction !== undefined ? transaction.txConfig : config?.txConfig, metadataKey);
    inFlight.inc(inFlightLabels);
    const finish = (outcome: 'success' | 'error', metadata?: CompletionMetadata, error?: unknown) => {
      if (finished) return;
      finished = true;
      inFlight.dec(inFlightLabels);
      const database = databaseLabel(requestedDatabase, metadata, homes, homeUser);
      const seconds = (performance.now() - started) / 1000;
      duration.observe({ source, database, mode, outcome }, seconds);
      const code = outcome === 'error' ? errorCodeLabel(error) : null;
      if (code !== null) errors.inc({ source, database, code });
      if (statistics !== undefined) {
        recorder.recordQuery(
          {
            text: typeof queryText === 'string' ? queryText : null,
            database,
            mode,
            outcome,
            errorCode: code,
            durationSeconds: seconds,
            records,
            client: source,
            attribution,
          },
          statistics,
        );
      }
    };
    const afterComplete = config?.afterComplete;
    const afterError = config?.afterError;
    const wrapped: RunConfig = {
      ...config,
      afterComplete(metadata: CompletionMetadata) {
        finish('success', metadata);
        afterComplete?.(metadata);
      },
      afterError(error: unknown) {
        finish('error', undefined, error);
        afterError?.(error);
      },
    };
    try {
      const observer = originalRun.call(this, queryText, parameters, wrapped);
      if (statistics !== undefined) countRecords(observer, () => records++);
      return observer;
    } catch (error) {
      finish('error', undefined, error);
      throw error;
    }
  };
}

/** Records reach the run's result observer through its onNext; counting them there sees each once. */
function countRecords(observer: unknown, onRecord: () => void): void {
  const target = observer as { onNext?: unknown } | null;
  if (target === null || typeof target !== 'object' || typeof target.onNext !== 'function') return;
  const onNext = target.onNext as (this: unknown, ...args: unknown[]) => unknown;
  target.onNext = function (this: unknown, ...args: unknown[]) {
    onRecord();
    return onNext.apply(this, args);
  };
}

/** A transaction config's metadata value under `key`, when it is a short string or a number (a task name). */
function attributionOf(txConfig: unknown, key: string): string | null {
  const metadata = (txConfig as { metadata?: unknown } | undefined)?.metadata;
  if (metadata === null || typeof metadata !== 'object') return null;
  const value = (metadata as Record<string, unknown>)[key];
  if (typeof value === 'string') return value.slice(0, 128);
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (value !== null && typeof value === 'object' && 'toNumber' in value) return String(value);
  return null;
}

/** Wraps the pool so every acquisition, creation, release and close is measured. */
function observePool(
  pool: PoolInternals,
  recorder: Recorder,
  poolName: string,
  source: string,
  statistics: QuerySink | undefined,
): { sample(): void; addresses(): string[]; opened(): number } {
  let opened = 0;
  const acquiring = new Map<string, number>();
  const acquiredAt = new WeakMap<object, number>();
  const acquisitionSeconds = recorder.histogram(poolMetrics.acquisitionSeconds);
  const creationSeconds = recorder.histogram(poolMetrics.creationSeconds);
  const usageSeconds = recorder.histogram(poolMetrics.usageSeconds);
  const timeouts = recorder.counter(poolMetrics.acquisitionTimeouts);
  const created = recorder.counter(poolMetrics.created);
  const failed = recorder.counter(poolMetrics.failed);
  const closed = recorder.counter(poolMetrics.closed);
  const addressOf = new WeakMap<object, string>();
  const seenAddresses = new Set<string>();
  const labelsFor = (address: string) => ({ pool: poolName, address });
  const homes = new HomeDatabases();

  const originalAcquire = pool.acquire;
  pool.acquire = async function (context: unknown, address: ServerAddressLike, config?: unknown) {
    const key = address.asKey();
    if (!seenAddresses.has(key)) {
      seenAddresses.add(key);
      for (const counter of [timeouts, created, failed, closed]) counter.touch(labelsFor(key));
    }
    acquiring.set(key, (acquiring.get(key) ?? 0) + 1);
    const started = performance.now();
    try {
      const resource = await originalAcquire.call(this, context, address, config);
      const now = performance.now();
      acquisitionSeconds.observe(labelsFor(key), (now - started) / 1000);
      if (resource && typeof resource === 'object') acquiredAt.set(resource, now);
      return resource;
    } catch (error) {
      if (error instanceof Error && error.message.startsWith(ACQUISITION_TIMEOUT_MESSAGE)) {
        timeouts.inc(labelsFor(key));
      }
      throw error;
    } finally {
      acquiring.set(key, (acquiring.get(key) ?? 1) - 1);
    }
  };

  const originalCreate = pool._create;
  pool._create = async function (context: unknown, address: ServerAddressLike, release: unknown) {
    const key = address.asKey();
    const started = performance.now();
    try {
      const connection = await originalCreate.call(this, context, address, release);
      creationSeconds.observe(labelsFor(key), (performance.now() - started) / 1000);
      created.inc(labelsFor(key));
      opened++;
      if (connection && typeof connection === 'object') addressOf.set(connection, key);
      if (isConnectionLike(connection)) instrumentConnection(connection, recorder, source, statistics, homes);
      return connection;
    } catch (error) {
      failed.inc(labelsFor(key));
      throw error;
    }
  };

  const originalDestroy = pool._destroy;
  pool._destroy = function (resource: unknown) {
    const key = (typeof resource === 'object' && resource !== null && addressOf.get(resource)) || 'unknown';
    closed.inc(labelsFor(key));
    return originalDestroy.call(this, resource);
  };

  const originalRelease = pool._release;
  pool._release = function (address: ServerAddressLike, resource: unknown, singlePool: unknown) {
    if (resource && typeof resource === 'object') {
      const since = acquiredAt.get(resource);
      if (since !== undefined) {
        acquiredAt.delete(resource);
        usageSeconds.observe(labelsFor(address.asKey()), (performance.now() - since) / 1000);
      }
    }
    return originalRelease.call(this, address, resource, singlePool);
  };

  const gauges = poolStateGauges(recorder);
  const reported = new Set<string>();

  const sample = () => {
    const keys = new Set<string>([
      ...Object.keys(pool._pools),
      ...Object.keys(pool._activeResourceCounts),
      ...[...acquiring.entries()].filter(([, count]) => count > 0).map(([key]) => key),
    ]);
    for (const key of keys) {
      const labels = labelsFor(key);
      gauges.inUse.set(labels, pool._activeResourceCounts[key] ?? 0);
      gauges.idle.set(labels, pool._pools[key]?.length ?? 0);
      gauges.creating.set(labels, pool._pendingCreates[key] ?? 0);
      gauges.acquiring.set(labels, acquiring.get(key) ?? 0);
      gauges.max.set(labels, pool._maxSize);
      reported.add(key);
    }
    // An address purged from the routing table must stop reporting its last values.
    for (const key of reported) {
      if (keys.has(key)) continue;
      reported.delete(key);
      for (const gauge of Object.values(gauges)) gauge.remove(labelsFor(key));
    }
  };
  return { sample, addresses: () => [...seenAddresses], opened: () => opened };
}

/**
 * Instruments a neo4j-driver (5.x or 6.x) Driver in place. Keep using the driver as before.
 *
 * ```ts
 * const recorder = new Recorder({ sinks: [new PrometheusSink({ registry })] });
 * instrumentDriver(driver, { recorder, poolName: 'worker' });
 * ```
 */
export function instrumentDriver(driver: object, options: InstrumentOptions): InstrumentedDriver {
  const recorder = options.recorder;
  const poolName = options.poolName ?? 'default';
  const source = options.source ?? DRIVER_SOURCE_FALLBACK;
  const found = findPool(driver);
  if (!found.ok) {
    options.onWarning?.(
      `neo4j-pool-sidecar: pool metrics unavailable for pool "${poolName}" (${found.reason}); ` +
        'this neo4j-driver version is not supported for pool metrics.',
    );
    return { poolName, poolObserved: false, connectionsOpened: () => 0, detach() {} };
  }
  const statistics = options.queryStats === null ? undefined : (options.queryStats ?? recorder.queryStats);
  const observed = observePool(found.pool, recorder, poolName, source, statistics);
  const unregister = recorder.addSampler(observed.sample);
  let detached = false;
  const detach = () => {
    if (detached) return;
    detached = true;
    unregister();
    const gauges = Object.values(poolStateGauges(recorder));
    for (const address of observed.addresses()) {
      for (const gauge of gauges) gauge.remove({ pool: poolName, address });
    }
  };
  const closable = driver as { close?: () => Promise<void> };
  const originalClose = closable.close;
  if (typeof originalClose === 'function') {
    closable.close = async function (this: unknown) {
      try {
        return await originalClose.call(this);
      } finally {
        detach();
      }
    };
  }
  return { poolName, poolObserved: true, connectionsOpened: observed.opened, detach };
}
