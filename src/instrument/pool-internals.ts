/**
 * The parts of neo4j-driver's internal pool (neo4j-driver-core/lib/internal/pool/pool.js) and
 * connections that instrumentation reads or wraps. They are not a public contract, so every
 * access goes through `findPool`, which checks the shape and says what is missing.
 *
 * Verified against neo4j-driver 5.28 and 6.3.
 */

export interface ServerAddressLike {
  asKey(): string;
}

export interface ConnectionLike {
  run(query: unknown, parameters: unknown, config?: RunConfig): unknown;
  beginTransaction(config?: BeginConfig): unknown;
  commitTransaction(config?: unknown): unknown;
  rollbackTransaction(config?: unknown): unknown;
}

export interface RunConfig {
  mode?: string;
  database?: string;
  afterComplete?: (metadata: CompletionMetadata) => void;
  afterError?: (error: unknown) => void;
  [key: string]: unknown;
}

export interface BeginConfig {
  mode?: string;
  database?: string;
  [key: string]: unknown;
}

export interface CompletionMetadata {
  db?: string;
  [key: string]: unknown;
}

type CreateFn = (context: unknown, address: ServerAddressLike, release: unknown) => Promise<ConnectionLike>;
type DestroyFn = (resource: unknown) => Promise<void>;
type ReleaseFn = (address: ServerAddressLike, resource: unknown, pool: unknown) => Promise<void>;
type AcquireFn = (context: unknown, address: ServerAddressLike, config?: unknown) => Promise<unknown>;

export interface PoolInternals {
  acquire: AcquireFn;
  _create: CreateFn;
  _destroy: DestroyFn;
  _release: ReleaseFn;
  _maxSize: number;
  _pools: Record<string, { length: number }>;
  _pendingCreates: Record<string, number>;
  _activeResourceCounts: Record<string, number>;
  _acquireRequests: Record<string, unknown[]>;
}

interface DriverInternals {
  _connectionProvider?: { _connectionPool?: unknown } | null;
  _getOrCreateConnectionProvider?: () => { _connectionPool?: unknown };
}

const FUNCTIONS = ['acquire', '_create', '_destroy', '_release'] as const;
const RECORDS = ['_pools', '_pendingCreates', '_activeResourceCounts', '_acquireRequests'] as const;

export type FindPoolResult = { ok: true; pool: PoolInternals } | { ok: false; reason: string };

/**
 * The driver creates its connection provider lazily (first session or verifyConnectivity); asking
 * for it here creates it early, without opening a connection, so the pool is watched from the start.
 */
export function findPool(driver: object): FindPoolResult {
  const internals = driver as DriverInternals;
  let provider = internals._connectionProvider;
  if (!provider && typeof internals._getOrCreateConnectionProvider === 'function') {
    provider = internals._getOrCreateConnectionProvider.call(driver);
  }
  if (!provider) return { ok: false, reason: 'driver has no _connectionProvider' };
  const pool = provider._connectionPool as Record<string, unknown> | undefined;
  if (!pool || typeof pool !== 'object') return { ok: false, reason: 'connection provider has no _connectionPool' };
  const missing = [
    ...FUNCTIONS.filter((name) => typeof pool[name] !== 'function'),
    ...RECORDS.filter((name) => typeof pool[name] !== 'object' || pool[name] === null),
    ...(typeof pool._maxSize === 'number' ? [] : ['_maxSize']),
  ];
  if (missing.length > 0) return { ok: false, reason: `pool lacks ${missing.join(', ')}` };
  return { ok: true, pool: pool as unknown as PoolInternals };
}

export function isConnectionLike(value: unknown): value is ConnectionLike {
  if (!value || typeof value !== 'object') return false;
  const candidate = value as Record<string, unknown>;
  return typeof candidate.run === 'function' && typeof candidate.beginTransaction === 'function';
}
