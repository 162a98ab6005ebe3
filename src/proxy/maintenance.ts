/**
 * What an operator can ask of a running proxy, pgbouncer's admin console for Neo4j: PAUSE, RESUME and
 * RECONNECT (the verbs), SHOW POOLS and SHOW CLIENTS (the views). The listener implements it; the HTTP
 * routes (/proxy/*), the CLI verbs and `top` read these shapes. No view names a user: a pool key is shown
 * as a short hash of the key and the Bolt version, never the login it holds a digest of.
 */
import type { PoolingMode } from './pool/pool.ts';

/**
 * What a client connection is doing:
 *   login    handshake and login, not yet a client of the pool
 *   in_unit  a query or an explicit transaction is open (in session mode, or with pooling off, the
 *            upstream is the client's for its whole life; this still says whether it is busy)
 *   idle     connected, nothing open
 *   waiting  wants an upstream and every one it may have is in use (maxUpstreams)
 *   held     wants an upstream while the pool is paused or Neo4j is unreachable
 *   closing  draining or closing
 */
export const CLIENT_STATES = ['login', 'in_unit', 'idle', 'waiting', 'held', 'closing'] as const;
export type ClientState = (typeof CLIENT_STATES)[number];

/** Upstreams by what they are doing, as the pool's gauge labels them. */
export const UPSTREAM_STATES = ['idle', 'in_use', 'opening', 'resetting'] as const;
export type UpstreamStateName = (typeof UPSTREAM_STATES)[number];

/** Work still running when a pause's drain timed out; never a user name or query text. */
export interface RunningWork {
  /** Client connections by state. */
  readonly clients: Readonly<Record<ClientState, number>>;
  /** Transactions or auto-commit queries with an upstream lent to them. */
  readonly unitsInFlight: number;
  /** Queries whose results are still streaming. */
  readonly queriesInFlight: number;
  /** Upstreams still lent to a client. */
  readonly upstreamsLent: number;
}

/** The longest drain a pause waits, and its default: a typical transaction ends well within it. */
export const MAX_DRAIN_TIMEOUT_SECONDS = 600;
export const DEFAULT_DRAIN_TIMEOUT_SECONDS = 30;

export interface PauseOptions {
  /** How long to wait for in-flight transactions and queries to end before reporting what still runs (at most the maximum pause). */
  readonly drainTimeoutMs: number;
}

export interface PauseReport {
  /** True once nothing is in flight: Neo4j can be stopped without failing a client. */
  readonly drained: boolean;
  /** The pause stays on whether or not the drain finished, until resume or the maximum pause (false only if one of those came first). */
  readonly paused: boolean;
  /** When the pause began (the first pause, if it was already paused). */
  readonly pausedSince: string;
  /** The configured maximum: the pause is released by itself after this. */
  readonly maxPauseSeconds: number;
  readonly waitedSeconds: number;
  /** What is still in flight; all zero when drained. */
  readonly running: RunningWork;
}

export interface ResumeReport {
  /** False when the pool was not paused (resume is then a no-op). */
  readonly wasPaused: boolean;
  /** How long the pause lasted; 0 when not paused. */
  readonly pausedSeconds: number;
  /** Client connections that were held by the pause and now proceed. */
  readonly released: number;
}

export interface ReconnectReport {
  /** Upstreams closed now (idle) or at their next return (lent): each is replaced by a new one on demand. */
  readonly upstreams: number;
}

export interface PoolKeyView {
  /** A short hash of the pool key: tells keys apart, reveals nothing of the login. */
  readonly key: string;
  /** Bolt version the key's upstreams speak, e.g. 5.8. */
  readonly bolt: string;
  readonly upstreams: Readonly<Record<UpstreamStateName, number>>;
}

/** With cluster routing: one member's pool (each member has its own, capped at maxUpstreams like the seed's). */
export interface MemberPoolView {
  /** host:port as the routing table names it. */
  readonly address: string;
  /** Its roles in the tables as last fetched: writer, reader, router (none: dropped until the next refresh). */
  readonly roles: readonly string[];
  readonly reachable: boolean;
  readonly upstreams: Readonly<Record<UpstreamStateName, number>>;
  readonly lent: number;
}

/** SHOW POOLS: the pool as a whole, and its upstreams by key. */
export interface PoolsView {
  readonly mode: Exclude<PoolingMode, 'off'>;
  readonly paused: boolean;
  /** When the current pause began; null when not paused. */
  readonly pausedSince: string | null;
  readonly pausedSeconds: number;
  readonly maxPauseSeconds: number;
  /** Whether the pool's last attempt to reach Neo4j succeeded (false while it holds clients through an outage). */
  readonly neo4jReachable: boolean;
  readonly maxUpstreams: number;
  readonly upstreams: Readonly<Record<UpstreamStateName, number>>;
  /** Clients waiting for an upstream because every one is in use. */
  readonly waiting: number;
  /** Clients held while paused or while Neo4j is unreachable. */
  readonly held: number;
  readonly lent: number;
  readonly keys: readonly PoolKeyView[];
  /** Cluster routing only: the members' pools (the fields above are the seed's, which verifies logins). */
  readonly members?: readonly MemberPoolView[];
}

export interface ClientView {
  readonly id: number;
  /** host:port of the client. */
  readonly remote: string;
  /** Driver family from the user agent (neo4j-python, neo4j-javascript, ...). */
  readonly userAgent: string;
  readonly state: ClientState;
  /** Seconds since it entered that state. */
  readonly stateSeconds: number;
  /** Queries it has run. */
  readonly queries: number;
}

/** SHOW CLIENTS: every client connection. */
export interface ClientsView {
  readonly mode: PoolingMode;
  readonly total: number;
  readonly byState: Readonly<Record<ClientState, number>>;
  readonly clients: readonly ClientView[];
}

/** The admin surface of a running proxy. */
export interface ProxyMaintenance {
  readonly poolingMode: PoolingMode;
  /** Holds new work, waits for in-flight work to end (or the timeout), then reports. Needs pooling. */
  pause(options: PauseOptions): Promise<PauseReport>;
  resume(): ResumeReport;
  reconnect(): ReconnectReport;
  pools(): PoolsView;
  clients(): ClientsView;
}

/** Zero for every client state: a count of each is always present, so readers need no defaults. */
export function countByState(states: Iterable<ClientState>): Record<ClientState, number> {
  const counts = Object.fromEntries(CLIENT_STATES.map((state) => [state, 0])) as Record<ClientState, number>;
  for (const state of states) counts[state]++;
  return counts;
}
