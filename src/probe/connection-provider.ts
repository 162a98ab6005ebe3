/**
 * The one neo4j-driver internal the acquisition probe needs: the connection provider's
 * `acquireConnection`, which is exactly what a session calls before it sends its first message
 * (pool wait, connection creation when none is idle, routing table refresh for neo4j:// URIs).
 * Public APIs always add at least one Bolt round trip, which is what the round-trip probe measures.
 *
 * Verified against neo4j-driver 5.28 and 6.3 (neo4j-driver-bolt-connection connection-provider-*.js).
 */

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

interface DriverInternals {
  _connectionProvider?: unknown;
  _getOrCreateConnectionProvider?: () => unknown;
}

export type FindProviderResult = { ok: true; provider: ConnectionProviderLike } | { ok: false; reason: string };

export function findConnectionProvider(driver: object): FindProviderResult {
  const internals = driver as DriverInternals;
  let provider = internals._connectionProvider;
  if (!provider && typeof internals._getOrCreateConnectionProvider === 'function') {
    provider = internals._getOrCreateConnectionProvider.call(driver);
  }
  if (!provider || typeof provider !== 'object') return { ok: false, reason: 'driver has no connection provider' };
  const acquire = (provider as Record<string, unknown>).acquireConnection;
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
