/**
 * The only place that reads neo4j-driver's internals: the connection provider, its pool
 * (neo4j-driver-core/lib/internal/pool/pool.js) and the connections it hands out. Instrumentation
 * wraps the pool (`findPool`); the acquisition probe calls the provider's `acquireConnection`
 * (`findConnectionProvider`), which is exactly what a session calls before its first message (pool
 * wait, connection creation when none is idle, routing table refresh for neo4j:// URIs); public APIs
 * always add at least one Bolt round trip, which is what the round-trip probe measures.
 * None of this is a public driver contract, so every access checks the shape and says what is missing.
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
  _connectionProvider?: unknown;
  _getOrCreateConnectionProvider?: () => unknown;
}

const FUNCTIONS = ['acquire', '_create', '_destroy', '_release'] as const;
const RECORDS = ['_pools', '_pendingCreates', '_activeResourceCounts', '_acquireRequests'] as const;

/**
 * The driver creates its connection provider lazily (first session or verifyConnectivity); asking
 * for it here creates it early, without opening a connection, so the pool is watched from the start.
 */
function connectionProviderOf(driver: object): Record<string, unknown> | undefined {
  const internals = driver as DriverInternals;
  let provider = internals._connectionProvider;
  if (!provider && typeof internals._getOrCreateConnectionProvider === 'function') {
    provider = internals._getOrCreateConnectionProvider.call(driver);
  }
  return provider && typeof provider === 'object' ? (provider as Record<string, unknown>) : undefined;
}

export type FindPoolResult = { ok: true; pool: PoolInternals } | { ok: false; reason: string };

export function findPool(driver: object): FindPoolResult {
  const provider = connectionProviderOf(driver);
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

export interface ProvidedConnection {
  release(): Promise<void> | void;
}

export interface AcquireRequest {
  accessMode: 'READ' | 'WRITE';
  /** '' asks for the user's home (default) database, as a session without a database does. */
  database: string;
}

export interface ConnectionProviderLike {
  acquireConnection(request: AcquireRequest): Promise<ProvidedConnection>;
}

export type FindProviderResult = { ok: true; provider: ConnectionProviderLike } | { ok: false; reason: string };

export function findConnectionProvider(driver: object): FindProviderResult {
  const provider = connectionProviderOf(driver);
  if (!provider) return { ok: false, reason: 'driver has no connection provider' };
  const acquire = provider.acquireConnection;
  if (typeof acquire !== 'function') return { ok: false, reason: 'connection provider has no acquireConnection' };
  return {
    ok: true,
    provider: {
      acquireConnection: (request) => {
        const result = acquire.call(provider, request) as Promise<unknown>;
        return result.then((connection) => {
          if (!connection || typeof (connection as ProvidedConnection).release !== 'function') {
            throw new Error('acquireConnection returned something that cannot be released');
          }
          return connection as ProvidedConnection;
        });
      },
    },
  };
}

export function isConnectionLike(value: unknown): value is ConnectionLike {
  if (!value || typeof value !== 'object') return false;
  const candidate = value as Record<string, unknown>;
  return typeof candidate.run === 'function' && typeof candidate.beginTransaction === 'function';
}
