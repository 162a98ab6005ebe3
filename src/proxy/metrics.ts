/**
 * Turns what the proxy observes into recorder calls against the catalogue. One instance per proxy,
 * shared by its connections; label sets are bound once and cached, since queryFinished runs per query.
 */

import { proxy as proxyMetrics, proxyPool, proxyRouting, query as queryMetrics } from '../metrics/catalogue.ts';
import { HOME_DATABASE_LABEL, HomeDatabases } from '../metrics/home-databases.ts';
import type { Recorder } from '../metrics/recorder.ts';
import { type BoltHandshake, formatBoltVersion, type MessageCounts, type QueryFinishedEvent } from './bolt/index.ts';
import type {
  CheckoutResult,
  HoldOutcome,
  HoldReason,
  LoginOutcome,
  PoolMaintenance,
  PoolObserver,
  UpstreamCloseReason,
  UpstreamStateLabel,
} from './pool/pool.ts';
import { serverSpeaks } from './pool/server-versions.ts';
import type { RefreshReason, RoutingObserver, RoutingView } from './routing/cluster-router.ts';
import { MEMBER_ROLES, type MemberRole } from './routing/routing-table.ts';

/** Why the proxy itself refused or closed a client connection; each is a value of the `reason` label. */
export type ProblemReason =
  | 'limit'
  | 'bad_handshake'
  | 'handshake_timeout'
  | 'framing'
  | 'protocol_violation'
  | 'message_too_large'
  | 'undecodable_message'
  | 'too_many_pending'
  | 'out_of_step'
  | 'upstream_unavailable'
  | 'upstream_not_bolt'
  | 'pool_timeout'
  | 'internal_error';

/** Why an accepted connection ended. */
export type CloseReason =
  | Exclude<ProblemReason, 'limit'>
  | 'client_closed'
  | 'server_closed'
  | 'client_error'
  | 'server_error'
  /** Closed by the drain at a transaction boundary while the proxy stops. */
  | 'shutdown'
  /** Still inside a query or transaction when the shutdown grace period ran out. */
  | 'shutdown_grace_over'
  /** Silent inside an explicit transaction for proxy.idleTransactionTimeoutMs: rolled back and closed. */
  | 'idle_transaction_timeout';

/**
 * The bolt_version label of a handshake: "none" without an agreed version. A manifest client picks its
 * version itself; one outside what the server announced is labelled "other", so a hostile client cannot
 * mint label values.
 */
export function boltVersionLabel(handshake: BoltHandshake): string {
  const version = handshake.negotiatedVersion;
  if (version === null || handshake.outcome !== 'agreed') return 'none';
  const ranges = handshake.serverVersionRanges ?? [];
  if (handshake.usedManifest && !serverSpeaks({ ranges, capabilities: 0n }, version)) return 'other';
  return formatBoltVersion(version);
}

/** user_agent label of a connection whose client has not sent HELLO (yet, or ever). */
export const UNKNOWN_USER_AGENT = 'unknown';
export const PROXY_SOURCE = 'proxy';
const UNKNOWN_ERROR_CODE = 'unknown';

interface ClientFamilySeries {
  readonly opened: (value?: number) => void;
  readonly authFailures: (value?: number) => void;
  readonly lifetime: (value: number) => void;
  readonly queriesPerConnection: (value: number) => void;
}

export interface ConnectionSummary {
  readonly userAgent: string;
  readonly reason: CloseReason;
  readonly lifetimeSeconds: number;
  readonly queries: number;
}

const OUTCOME_SLOTS: Readonly<Record<QueryFinishedEvent['outcome'], number>> = {
  success: 0,
  error: 1,
  ignored: 2,
  abandoned: 3,
};

function durationSlot(mode: QueryFinishedEvent['mode'], outcome: QueryFinishedEvent['outcome']): number {
  return (mode === 'read' ? 0 : 4) + OUTCOME_SLOTS[outcome];
}

export class ProxyMetrics implements PoolObserver, RoutingObserver {
  /**
   * What each connection's conversation tracker must read for this proxy: query texts and the
   * attribution key only when query statistics are on (decoding texts costs time per query); and the
   * home databases all connections learn, so a query naming none is labelled with the one it ran on.
   */
  readonly conversation: {
    readonly queryText: boolean;
    readonly metadataKey: string | null;
    readonly homeDatabases: HomeDatabases;
  };
  readonly #recorder: Recorder;
  readonly #families = new Map<string, ClientFamilySeries>();
  /** Bound duration series by database, then by mode and outcome (see durationSlot): no key string per query. */
  readonly #durations = new Map<string, Array<((value: number) => void) | undefined>>();
  readonly #messages = new Map<string, (value?: number) => void>();
  readonly #bytesFromClient: (value?: number) => void;
  readonly #bytesFromServer: (value?: number) => void;
  readonly #upstreamConnect: (value: number) => void;
  /** Bound at the first checkout (pooling off has none): transaction mode checks out per unit of work. */
  readonly #checkouts = new Map<CheckoutResult, (value?: number) => void>();
  #checkoutWait: ((value: number) => void) | null = null;

  constructor(recorder: Recorder) {
    this.#recorder = recorder;
    const statistics = recorder.queryStats;
    this.conversation = {
      queryText: statistics !== undefined,
      metadataKey: statistics?.metadataKey ?? null,
      homeDatabases: new HomeDatabases(),
    };
    const bytes = recorder.counter(proxyMetrics.bytes);
    this.#bytesFromClient = bytes.bind({ direction: 'client_to_server' });
    this.#bytesFromServer = bytes.bind({ direction: 'server_to_client' });
    this.#upstreamConnect = recorder.histogram(proxyMetrics.upstreamConnectSeconds).bind({});
    // Present from the start, so a dashboard shows 0 rather than no data before the first client.
    recorder.gauge(proxyMetrics.clientConnectionsActive).set({}, 0);
  }

  connectionAccepted(): void {
    this.#recorder.gauge(proxyMetrics.clientConnectionsActive).inc({});
  }

  /** The connection's client is known: its HELLO arrived, or it closed without one. */
  connectionOpened(userAgent: string): void {
    this.#family(userAgent).opened();
  }

  connectionClosed(summary: ConnectionSummary): void {
    const family = this.#family(summary.userAgent);
    family.lifetime(summary.lifetimeSeconds);
    family.queriesPerConnection(summary.queries);
    this.#recorder
      .counter(proxyMetrics.clientConnectionsClosed)
      .inc({ user_agent: summary.userAgent, reason: summary.reason });
    this.#recorder.gauge(proxyMetrics.clientConnectionsActive).dec({});
  }

  idleTransactionTimedOut(userAgent: string): void {
    this.#recorder.counter(proxyMetrics.idleTransactionTimeouts).inc({ user_agent: userAgent });
  }

  rejected(reason: ProblemReason): void {
    this.#recorder.counter(proxyMetrics.connectionsRejected).inc({ reason });
  }

  upstreamConnected(seconds: number): void {
    this.#upstreamConnect(seconds);
  }

  boltVersion(version: string): void {
    this.#recorder.counter(proxyMetrics.boltVersions).inc({ version });
  }

  authFailure(userAgent: string): void {
    this.#family(userAgent).authFailures();
  }

  routingTableRewritten(via: 'ROUTE' | 'procedure'): void {
    this.#recorder.counter(proxyMetrics.routingTablesRewritten).inc({ via });
  }

  /** `client` is the connection's user-agent family (bounded), for the statistics' client column. */
  queryFinished(event: QueryFinishedEvent, client: string): void {
    const database = event.database ?? HOME_DATABASE_LABEL;
    let slots = this.#durations.get(database);
    if (slots === undefined) {
      slots = [];
      this.#durations.set(database, slots);
    }
    const slot = durationSlot(event.mode, event.outcome);
    let observe = slots[slot];
    if (observe === undefined) {
      observe = this.#recorder
        .histogram(queryMetrics.duration)
        .bind({ source: PROXY_SOURCE, database, mode: event.mode, outcome: event.outcome });
      slots[slot] = observe;
    }
    observe(event.durationSeconds);
    if (event.outcome === 'error') {
      this.#recorder
        .counter(queryMetrics.errors)
        .inc({ source: PROXY_SOURCE, database, code: event.errorCode ?? UNKNOWN_ERROR_CODE });
    }
    if (this.conversation.queryText) {
      this.#recorder.recordQuery({
        text: event.queryText,
        database,
        mode: event.mode,
        outcome: event.outcome,
        errorCode: event.errorCode,
        durationSeconds: event.durationSeconds,
        records: event.recordCount,
        client,
        attribution: event.attribution,
      });
    }
  }

  queriesInFlight(count: number): void {
    this.#recorder.gauge(queryMetrics.inFlight).set({ source: PROXY_SOURCE }, count);
  }

  /** Bytes and message counts are summed per connection and added here in batches, not per read. */
  traffic(bytesFromClient: number, bytesFromServer: number, messages: MessageCounts): void {
    this.#bytesFromClient(bytesFromClient);
    this.#bytesFromServer(bytesFromServer);
    this.#addMessages('client_to_server', messages.client);
    this.#addMessages('server_to_client', messages.server);
  }

  checkout(result: CheckoutResult, waitSeconds: number): void {
    let checkouts = this.#checkouts.get(result);
    if (checkouts === undefined) {
      checkouts = this.#recorder.counter(proxyPool.checkouts).bind({ result });
      this.#checkouts.set(result, checkouts);
    }
    checkouts();
    this.#checkoutWait ??= this.#recorder.histogram(proxyPool.waitSeconds).bind({});
    this.#checkoutWait(waitSeconds);
  }

  login(outcome: LoginOutcome): void {
    this.#recorder.counter(proxyPool.logins).inc({ outcome });
  }

  upstreamClosed(reason: UpstreamCloseReason, reuses: number | null): void {
    this.#recorder.counter(proxyPool.upstreamsClosed).inc({ reason });
    // One never lent (a pre-warmed upstream that expired unused) would only pull the distribution to 0.
    if (reuses !== null) this.#recorder.histogram(proxyPool.reusesPerUpstream).observe({}, reuses);
  }

  holdEnded(reason: HoldReason, outcome: HoldOutcome, seconds: number): void {
    this.#recorder.counter(proxyPool.holds).inc({ reason, outcome });
    this.#recorder.histogram(proxyPool.holdSeconds).observe({ reason }, seconds);
  }

  pauseExpired(): void {
    this.#recorder.counter(proxyPool.pausesExpired).inc({});
  }

  poolState(states: Readonly<Record<UpstreamStateLabel, number>>, waiting: number, maintenance: PoolMaintenance): void {
    const gauge = this.#recorder.gauge(proxyPool.upstreams);
    for (const [state, count] of Object.entries(states)) gauge.set({ state }, count);
    this.#recorder.gauge(proxyPool.clientsWaiting).set({}, waiting);
    const held = this.#recorder.gauge(proxyPool.clientsHeld);
    for (const [reason, count] of Object.entries(maintenance.heldBy)) held.set({ reason }, count);
    this.#recorder.gauge(proxyPool.paused).set({}, maintenance.paused ? 1 : 0);
    this.#recorder.gauge(proxyPool.pausedSince).set({}, (maintenance.pausedSinceMs ?? 0) / 1000);
    this.#recorder.gauge(proxyPool.neo4jReachable).set({}, maintenance.neo4jReachable ? 1 : 0);
  }

  tableRefreshed(reason: RefreshReason, outcome: 'ok' | 'failed'): void {
    this.#recorder.counter(proxyRouting.refreshes).inc({ reason, outcome });
  }

  failover(role: MemberRole): void {
    this.#recorder.counter(proxyRouting.failovers).inc({ role });
  }

  unitRouted(member: string, access: 'read' | 'write'): void {
    this.#recorder.counter(proxyRouting.units).inc({ member, access });
  }

  /** The members by role, and each member pool's upstreams, as the router and its pools see them now. */
  routingState(
    view: RoutingView,
    memberStates: ReadonlyMap<string, Readonly<Record<UpstreamStateLabel, number>>>,
  ): void {
    const byRole: Record<MemberRole, number> = { writer: 0, reader: 0, router: 0 };
    for (const member of view.members) for (const role of member.roles) byRole[role]++;
    const members = this.#recorder.gauge(proxyRouting.members);
    for (const role of MEMBER_ROLES) members.set({ role }, byRole[role]);
    const upstreams = this.#recorder.gauge(proxyRouting.memberUpstreams);
    for (const [member, states] of memberStates) {
      for (const [state, count] of Object.entries(states)) upstreams.set({ member, state }, count);
    }
    const reachable = this.#recorder.gauge(proxyRouting.memberReachable);
    for (const member of view.members) reachable.set({ member: member.address }, member.reachable ? 1 : 0);
  }

  #addMessages(direction: string, counts: MessageCounts['client']): void {
    for (const [message, count] of Object.entries(counts)) {
      if (count === undefined || count === 0) continue;
      const key = `${direction}\u0000${message}`;
      let add = this.#messages.get(key);
      if (add === undefined) {
        add = this.#recorder.counter(proxyMetrics.messages).bind({ direction, message });
        this.#messages.set(key, add);
      }
      add(count);
    }
  }

  #family(userAgent: string): ClientFamilySeries {
    let series = this.#families.get(userAgent);
    if (series === undefined) {
      const labels = { user_agent: userAgent };
      series = {
        opened: this.#recorder.counter(proxyMetrics.clientConnectionsOpened).bind(labels),
        authFailures: this.#recorder.counter(proxyMetrics.authFailures).bind(labels),
        lifetime: this.#recorder.histogram(proxyMetrics.clientConnectionLifetime).bind(labels),
        queriesPerConnection: this.#recorder.histogram(proxyMetrics.queriesPerConnection).bind(labels),
      };
      this.#families.set(userAgent, series);
    }
    return series;
  }
}
