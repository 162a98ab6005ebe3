/**
 * The listener's maintenance verbs and views (src/proxy/maintenance.ts's shapes) computed from what
 * the listener owns: its client connections and its pool. Kept out of listener.ts so the listener stays
 * about accepting and stopping; these are plain functions of the connections, the pool and a clock.
 *
 * A client's state is read off its two state machines (connection-states.ts) and whether anything is
 * open on it; "held" versus "waiting" for a client checking out is the pool's reason to hold (paused,
 * or Neo4j unreachable) at that moment. Time in a state counts from the connection's last transition,
 * or, for a change no transition marks (idle and busy in session mode), from when a view first saw it.
 */
import { createHash } from 'node:crypto';
import type { ProxiedConnection } from './connection.ts';
import {
  type ClientState,
  type ClientsView,
  type ClientView,
  countByState,
  type PauseReport,
  type PoolKeyView,
  type PoolsView,
  type RunningWork,
} from './maintenance.ts';
import type { PoolingMode, UpstreamPool } from './pool/pool.ts';

/** What a view reads of a connection (ProxiedConnection has it all). */
export type ViewedConnection = Pick<
  ProxiedConnection,
  'id' | 'remoteAddress' | 'userAgent' | 'openQueries' | 'quiet' | 'queryCount' | 'states'
>;

export interface StateMemo {
  readonly state: ClientState;
  readonly sinceMs: number;
  readonly observedMs: number;
}

/** The first 8 hex digits of a SHA-256 of the pool key: tells keys apart, says nothing of what is in them. */
export function keyHash(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

export function clientState(connection: ViewedConnection, holding: boolean): ClientState {
  const { client, upstream } = connection.states;
  if (client === 'refusing' || client === 'ending' || client === 'closed') return 'closing';
  if (upstream === 'checking-out') return holding ? 'held' : 'waiting';
  if (client === 'handshaking' || client === 'logging-in' || upstream === 'connecting') return 'login';
  if (upstream === 'unlinked') return 'idle';
  return connection.quiet ? 'idle' : 'in_unit';
}

export class ClientStates {
  readonly #memo = new WeakMap<ViewedConnection, StateMemo>();
  readonly #now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** The connection's state and since when (ms on the `now` clock), remembered for the next look. */
  observe(connection: ViewedConnection, holding: boolean): StateMemo {
    const now = this.#now();
    const state = clientState(connection, holding);
    const memo = this.#memo.get(connection);
    let sinceMs: number;
    if (memo !== undefined && memo.state === state) sinceMs = memo.sinceMs;
    else {
      const changedAt = connection.states.changedAtMs;
      sinceMs = memo === undefined || changedAt > memo.observedMs ? changedAt : now;
    }
    const next = { state, sinceMs, observedMs: now };
    this.#memo.set(connection, next);
    return next;
  }

  clients(connections: Iterable<ViewedConnection>, mode: PoolingMode, holding: boolean): ClientsView {
    const now = this.#now();
    const clients: ClientView[] = [];
    for (const connection of connections) {
      const { state, sinceMs } = this.observe(connection, holding);
      clients.push({
        id: connection.id,
        remote: connection.remoteAddress,
        userAgent: connection.userAgent,
        state,
        stateSeconds: Math.max(0, (now - sinceMs) / 1000),
        queries: connection.queryCount,
      });
    }
    clients.sort((a, b) => a.id - b.id);
    return { mode, total: clients.length, byState: countByState(clients.map((c) => c.state)), clients };
  }
}

/** Whether the pool holds checkouts now rather than lending (paused, or Neo4j unreachable). */
export function poolHolds(pool: UpstreamPool | null): boolean {
  if (pool === null) return false;
  const { paused, neo4jReachable } = pool.maintenance;
  return paused || !neo4jReachable;
}

export function runningWork(connections: Iterable<ViewedConnection>, pool: UpstreamPool | null): RunningWork {
  const holding = poolHolds(pool);
  const states: ClientState[] = [];
  let queriesInFlight = 0;
  for (const connection of connections) {
    states.push(clientState(connection, holding));
    queriesInFlight += connection.openQueries;
  }
  const clients = countByState(states);
  return {
    clients,
    unitsInFlight: clients.in_unit,
    queriesInFlight,
    upstreamsLent: pool?.maintenance.lent ?? 0,
  };
}

export function poolsView(pool: UpstreamPool, maxUpstreams: number, maxPauseMs: number): PoolsView {
  const maintenance = pool.maintenance;
  const { states, waiting } = pool.counts();
  const keys: PoolKeyView[] = pool.upstreamsByKey().map(({ key, bolt, states: upstreams }) => ({
    key: keyHash(key),
    bolt,
    upstreams,
  }));
  return {
    mode: pool.mode,
    paused: maintenance.paused,
    pausedSince: maintenance.pausedSinceMs === null ? null : new Date(maintenance.pausedSinceMs).toISOString(),
    pausedSeconds: (maintenance.pausedForMs ?? 0) / 1000,
    maxPauseSeconds: maxPauseMs / 1000,
    neo4jReachable: maintenance.neo4jReachable,
    maxUpstreams,
    upstreams: states,
    waiting,
    held: maintenance.held,
    lent: maintenance.lent,
    keys,
  };
}

/**
 * Pauses the pool, then waits until no upstream is lent or `drainTimeoutMs` passes, and reports what
 * still runs. `now` measures the wait on the same clock as the pool's.
 */
export async function pauseAndDrain(
  pool: UpstreamPool,
  connections: () => Iterable<ViewedConnection>,
  drainTimeoutMs: number,
  maxPauseMs: number,
  now: () => number = () => performance.now(),
): Promise<PauseReport> {
  const startedMs = now();
  pool.pause();
  const drained = await pool.whenDrained(drainTimeoutMs);
  const maintenance = pool.maintenance;
  return {
    drained,
    paused: true,
    pausedSince: new Date(maintenance.pausedSinceMs ?? Date.now()).toISOString(),
    maxPauseSeconds: maxPauseMs / 1000,
    waitedSeconds: (now() - startedMs) / 1000,
    running: runningWork(connections(), pool),
  };
}
