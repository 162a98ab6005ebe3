/**
 * The Bolt proxy's listener: accepts client connections (refusing past maxConnections), owns the pool,
 * and picks once, from the pooling mode, how every connection meets its client (front.ts): pass-through
 * with pooling off (an upstream of its own per client), the pooled login in session mode (an upstream
 * lent for the client's life), units of work in transaction mode (one lent per unit). See connection.ts,
 * pool/pool.ts. Bad input closes that one connection with a logged reason and a counter; the listener
 * and the process carry on.
 */
import net from 'node:net';
import { hostname } from 'node:os';
import { createLogger, type Logger, rateLimited } from '../logger.ts';
import type { Recorder } from '../metrics/recorder.ts';
import { type ConnectionHooks, type ConnectionSettings, ProxiedConnection } from './connection.ts';
import type { FrontFactory } from './front.ts';
import type {
  ClientsView,
  PauseOptions,
  PauseReport,
  PoolsView,
  ProxyMaintenance,
  ReconnectReport,
  ResumeReport,
} from './maintenance.ts';
import { ClientStates, pauseAndDrain, poolHolds, poolsView } from './maintenance-views.ts';
import { type ProblemReason, ProxyMetrics } from './metrics.ts';
import {
  type HoldReason,
  type PoolingMode,
  type PoolMaintenance,
  type PoolSettings,
  realClock,
  UpstreamPool,
  type UpstreamStateLabel,
} from './pool/pool.ts';
import { PooledLogin } from './pool/pooled-login.ts';
import { TransactionUnits } from './pool/transaction-units.ts';
import { BoltRefusal, CONNECTION_LIMIT_CODE } from './refusal.ts';
import { ClusterRouter, type RoutingView } from './routing/cluster-router.ts';
import { formatAddress, type UpstreamTarget } from './upstream.ts';

export interface BoltProxyOptions {
  readonly upstream: UpstreamTarget;
  readonly recorder: Recorder;
  readonly logger?: Logger;
  /** Listen address; 127.0.0.1 by default. */
  readonly host?: string;
  /** Listen port; 7687 by default, 0 for a free one. */
  readonly port?: number;
  /** host:port written into routing tables; the listen address by default (this host's name when listening on all interfaces). */
  readonly advertisedAddress?: string;
  readonly maxConnections?: number;
  readonly handshakeTimeoutMs?: number;
  readonly upstreamConnectTimeoutMs?: number;
  readonly maxMessageBytes?: number;
  /** How long stop() lets connections finish in-flight work. */
  readonly shutdownGraceMs?: number;
  /** A client silent this long inside an explicit transaction is rolled back and closed; 0: never. */
  readonly idleTransactionTimeoutMs?: number;
  /** Upstream pooling; off (one upstream per client) unless given. */
  readonly pooling?: PoolingOptions;
}

export interface PoolingOptions extends Partial<Omit<PoolSettings, 'connectTimeoutMs' | 'maxMessageBytes'>> {
  readonly mode: PoolingMode;
}

export const POOLING_DEFAULTS: Omit<PoolSettings, 'connectTimeoutMs' | 'maxMessageBytes'> = {
  maxUpstreams: 100,
  maxUpstreamsPerKey: 100,
  acquireTimeoutMs: 30_000,
  idleTimeoutMs: 600_000,
  minIdle: 0,
  // 50 minutes, spread down to 40: under the 60-minute idle cut of hosted Neo4j.
  maxLifetimeMs: 3_000_000,
  livenessCheckAfterIdleMs: 30_000,
  authCacheSeconds: 0,
  // Why 25 s: see proxy.pooling.holdTimeoutMs in src/config/schema.ts.
  holdTimeoutMs: 25_000,
  maxPauseMs: 120_000,
};

export interface BoltProxyStatus {
  readonly listen: string;
  readonly advertisedAddress: string;
  readonly upstream: string;
  readonly activeConnections: number;
  readonly maxConnections: number;
  readonly acceptedConnections: number;
  readonly refusedConnections: number;
  /** Connections by negotiated Bolt version since start ("none": no common version). */
  readonly boltVersions: Readonly<Record<string, number>>;
  /** Open connections by client driver family. */
  readonly activeByUserAgent: Readonly<Record<string, number>>;
  readonly queriesInFlight: number;
  /** Bytes waiting in the proxy's socket buffers and held messages: stays small under back-pressure. */
  readonly bufferedBytes: number;
  /** Pooled upstreams by state and clients waiting for one (every cluster member's included); absent with pooling off. */
  readonly pool?: {
    readonly mode: PoolingMode;
    readonly states: Readonly<Record<string, number>>;
    readonly waiting: number;
  };
  /** Cluster routing (neo4j:// upstream in transaction mode): the routing tables and members as last seen. */
  readonly routing?: RoutingView;
}

const DEFAULTS = {
  host: '127.0.0.1',
  port: 7687,
  maxConnections: 1000,
  handshakeTimeoutMs: 10_000,
  upstreamConnectTimeoutMs: 5000,
  maxMessageBytes: 16 * 1024 * 1024,
  shutdownGraceMs: 10_000,
  idleTransactionTimeoutMs: 300_000,
};
/** The idle-in-transaction check runs every tenth of the timeout, within these bounds. */
const IDLE_CHECK_MIN_MS = 100;
const IDLE_CHECK_MAX_MS = 5000;
/** Refusals being answered at once; past this a refused client is just closed, so a flood costs nothing. */
const MAX_CONCURRENT_REFUSALS = 64;
const PROBLEM_LOG_INTERVAL_MS = 10_000;
const WILDCARD_HOSTS: ReadonlySet<string> = new Set(['0.0.0.0', '::', '']);

export class BoltProxy implements ProxyMaintenance {
  readonly #listener: net.Server;
  readonly #options: BoltProxyOptions;
  readonly #logger: Logger;
  readonly #metrics: ProxyMetrics;
  readonly #settings: ConnectionSettings;
  readonly #maxConnections: number;
  readonly #connections = new Set<ProxiedConnection>();
  readonly #refusals = new Set<net.Socket>();
  readonly #versions = new Map<string, number>();
  readonly #logProblem = new Map<ProblemReason, (fields: Record<string, unknown>, message: string) => void>();
  readonly #removeSampler: () => void;
  readonly #idleTransactionCheck: NodeJS.Timeout | null;
  readonly #logIdleTransaction = rateLimited(
    (fields, message) => this.#logger.warn(fields, message),
    PROBLEM_LOG_INTERVAL_MS,
  );
  readonly #listen: string;
  readonly #pool: UpstreamPool | null;
  /** Transaction mode with a neo4j:// upstream: units go to cluster members (the pool above verifies logins). */
  readonly #router: ClusterRouter | null;
  readonly #clientStates = new ClientStates();
  #nextId = 1;
  #accepted = 0;
  #refused = 0;
  #stopping: Promise<void> | null = null;

  private constructor(server: net.Server, options: BoltProxyOptions, listenHost: string, listenPort: number) {
    this.#listener = server;
    this.#options = options;
    this.#logger = (options.logger ?? createLogger({ level: 'silent', pretty: 'never' })).child({ component: 'proxy' });
    this.#metrics = new ProxyMetrics(options.recorder);
    this.#maxConnections = options.maxConnections ?? DEFAULTS.maxConnections;
    this.#listen = formatAddress(listenHost, listenPort);
    const advertisedHost = WILDCARD_HOSTS.has(listenHost) ? hostname() : listenHost;
    const upstreamConnectTimeoutMs = options.upstreamConnectTimeoutMs ?? DEFAULTS.upstreamConnectTimeoutMs;
    const maxMessageBytes = options.maxMessageBytes ?? DEFAULTS.maxMessageBytes;
    const pooling = options.pooling;
    const { mode: _mode, ...poolSettings } = pooling ?? { mode: 'off' };
    const settings = {
      ...POOLING_DEFAULTS,
      ...poolSettings,
      connectTimeoutMs: upstreamConnectTimeoutMs,
      maxMessageBytes,
    };
    this.#pool =
      pooling === undefined || pooling.mode === 'off'
        ? null
        : new UpstreamPool(options.upstream, settings, this.#metrics, pooling.mode, this.#logger);
    this.#router =
      this.#pool === null || this.#pool.mode !== 'transaction' || !options.upstream.uri.startsWith('neo4j')
        ? null
        : new ClusterRouter({
            seed: options.upstream,
            seedPool: this.#pool,
            createPool: (target) =>
              new UpstreamPool(
                target,
                settings,
                this.#metrics,
                'transaction',
                this.#logger.child({ member: target.uri }),
              ),
            observer: this.#metrics,
            holdTimeoutMs: settings.holdTimeoutMs,
            clock: realClock,
            logger: this.#logger,
          });
    this.#settings = {
      front: frontFor(this.#pool, this.#router),
      upstream: options.upstream,
      advertisedAddress: options.advertisedAddress ?? formatAddress(advertisedHost, listenPort),
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? DEFAULTS.handshakeTimeoutMs,
      upstreamConnectTimeoutMs,
      maxMessageBytes,
    };
    this.#removeSampler = options.recorder.addSampler(() => this.#sample());
    this.#idleTransactionCheck = this.#startIdleTransactionCheck(
      options.idleTransactionTimeoutMs ?? DEFAULTS.idleTransactionTimeoutMs,
    );
    server.on('connection', (socket) => this.#onConnection(socket));
    server.on('error', (error) => this.#logger.error({ err: error }, 'Bolt proxy listener error'));
  }

  /** Listens, then resolves; rejects when the address cannot be bound. */
  static async start(options: BoltProxyOptions): Promise<BoltProxy> {
    const server = net.createServer();
    const host = options.host ?? DEFAULTS.host;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port: options.port ?? DEFAULTS.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { port } = server.address() as net.AddressInfo;
    const proxy = new BoltProxy(server, options, host, port);
    proxy.#logger.info(
      { listen: proxy.#listen, advertisedAddress: proxy.advertisedAddress, upstream: options.upstream.uri },
      'Bolt proxy listening',
    );
    return proxy;
  }

  /** host:port the proxy listens on. */
  get address(): string {
    return this.#listen;
  }

  get port(): number {
    return (this.#listener.address() as net.AddressInfo | null)?.port ?? 0;
  }

  get advertisedAddress(): string {
    return this.#settings.advertisedAddress;
  }

  get activeConnections(): number {
    return this.#connections.size;
  }

  get poolingMode(): PoolingMode {
    return this.#pool?.mode ?? 'off';
  }

  /**
   * pgbouncer's PAUSE: new work that needs an upstream is held from now on, and the answer comes once
   * nothing is lent (drained) or after the timeout (at most the maximum pause), saying what still runs.
   */
  async pause(options: PauseOptions): Promise<PauseReport> {
    const pool = this.#requirePool();
    const members = this.#router?.memberPools() ?? [];
    for (const member of members) member.pause();
    const drainTimeoutMs = Math.min(options.drainTimeoutMs, pool.settings.maxPauseMs);
    const [report] = await Promise.all([
      pauseAndDrain(pool, () => this.#connections, drainTimeoutMs, pool.settings.maxPauseMs),
      ...members.map((member) => member.whenDrained(drainTimeoutMs)),
    ]);
    this.#logger.info({ drained: report.drained, running: report.running }, 'Bolt proxy paused');
    return report;
  }

  /** pgbouncer's RESUME: the clients the pause held go on, in arrival order. */
  resume(): ResumeReport {
    const pool = this.#requirePool();
    const { paused, pausedForMs, heldBy } = pool.maintenance;
    pool.resume();
    for (const member of this.#router?.memberPools() ?? []) member.resume();
    if (paused) this.#logger.info({ pausedMs: pausedForMs, released: heldBy.paused }, 'Bolt proxy resumed');
    return {
      wasPaused: paused,
      pausedSeconds: paused ? (pausedForMs ?? 0) / 1000 : 0,
      released: paused ? heldBy.paused : 0,
    };
  }

  /** pgbouncer's RECONNECT: every upstream open now is closed at its next return. */
  reconnect(): ReconnectReport {
    const pool = this.#requirePool();
    const { states } = this.#poolCounts(pool);
    const upstreams = states.idle + states.in_use + states.opening + states.resetting;
    pool.reconnect();
    for (const member of this.#router?.memberPools() ?? []) member.reconnect();
    this.#logger.info({ upstreams }, 'Bolt proxy reconnecting its upstreams');
    return { upstreams };
  }

  /** pgbouncer's SHOW POOLS. */
  pools(): PoolsView {
    const pool = this.#requirePool();
    const view = poolsView(pool, pool.settings.maxUpstreams, pool.settings.maxPauseMs);
    const router = this.#router;
    if (router === null) return view;
    const members = router.view().members.flatMap((member) => {
      const memberPool = router.poolOf(member.address);
      if (memberPool === null) return [];
      return [
        {
          address: member.address,
          roles: member.roles,
          reachable: member.reachable,
          upstreams: memberPool.counts().states,
          lent: memberPool.lentCount,
        },
      ];
    });
    return { ...view, members };
  }

  /** pgbouncer's SHOW CLIENTS. */
  clients(): ClientsView {
    return this.#clientStates.clients(this.#connections, this.poolingMode, poolHolds(this.#pool));
  }

  #requirePool(): UpstreamPool {
    if (this.#pool === null) throw new Error('the Bolt proxy runs without a pool (proxy.pooling.mode: off)');
    return this.#pool;
  }

  status(): BoltProxyStatus {
    const activeByUserAgent: Record<string, number> = {};
    let queriesInFlight = 0;
    let bufferedBytes = 0;
    for (const connection of this.#connections) {
      activeByUserAgent[connection.userAgent] = (activeByUserAgent[connection.userAgent] ?? 0) + 1;
      queriesInFlight += connection.openQueries;
      bufferedBytes += connection.bufferedBytes;
    }
    return {
      listen: this.#listen,
      advertisedAddress: this.advertisedAddress,
      upstream: this.#options.upstream.uri,
      activeConnections: this.#connections.size,
      maxConnections: this.#maxConnections,
      acceptedConnections: this.#accepted,
      refusedConnections: this.#refused,
      boltVersions: Object.fromEntries(this.#versions),
      activeByUserAgent,
      queriesInFlight,
      bufferedBytes,
      ...(this.#pool === null ? {} : { pool: { mode: this.#pool.mode, ...this.#poolCounts(this.#pool) } }),
      ...(this.#router === null ? {} : { routing: this.#router.view() }),
    };
  }

  /**
   * Stops accepting, lets open connections finish their in-flight queries and transactions for up to
   * `graceMs`, closing each at a transaction boundary (at once when it is between transactions, after
   * its COMMIT's reply when in one; in transaction mode a unit still waiting for an upstream is not
   * started), then cuts off the rest (shutdown_grace_over).
   */
  stop(graceMs: number = this.#options.shutdownGraceMs ?? DEFAULTS.shutdownGraceMs): Promise<void> {
    this.#stopping ??= (async () => {
      const listenerClosed = new Promise<void>((resolve) => this.#listener.close(() => resolve()));
      for (const socket of this.#refusals) socket.destroy();
      const open = [...this.#connections];
      for (const connection of open) connection.drain();
      const allClosed = Promise.all(open.map((connection) => connection.closed));
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<'grace-over'>((resolve) => {
        timer = setTimeout(() => resolve('grace-over'), graceMs);
      });
      const outcome = await Promise.race([allClosed, graceOver]);
      clearTimeout(timer);
      if (outcome === 'grace-over') {
        const left = [...this.#connections];
        if (left.length > 0)
          this.#logger.warn({ connections: left.length }, 'closing connections still busy after the grace period');
        for (const connection of left) connection.terminate();
      }
      await allClosed;
      this.#pool?.close();
      this.#router?.close();
      await listenerClosed;
      if (this.#idleTransactionCheck !== null) clearInterval(this.#idleTransactionCheck);
      this.#sample();
      this.#removeSampler();
      this.#logger.info('Bolt proxy stopped');
    })();
    return this.#stopping;
  }

  #onConnection(socket: net.Socket): void {
    socket.setNoDelay(true);
    if (this.#stopping !== null) {
      socket.destroy();
      return;
    }
    if (this.#connections.size >= this.#maxConnections) {
      this.#refuseOverLimit(socket);
      return;
    }
    socket.setKeepAlive(true, 60_000);
    this.#accepted++;
    const hooks: ConnectionHooks = {
      metrics: this.#metrics,
      onProblem: (connection, reason, error) => this.#onProblem(reason, error, connection),
      onVersion: (version) => this.#versions.set(version, (this.#versions.get(version) ?? 0) + 1),
      onClosed: (connection) => {
        this.#connections.delete(connection);
        this.#logger.debug(
          { connection: connection.id, client: connection.remoteAddress, userAgent: connection.userAgent },
          'client connection closed',
        );
      },
    };
    const connection = new ProxiedConnection(this.#nextId++, socket, this.#settings, hooks);
    this.#connections.add(connection);
  }

  #refuseOverLimit(socket: net.Socket): void {
    this.#refused++;
    this.#metrics.rejected('limit');
    this.#onProblem(
      'limit',
      new Error(`at proxy.maxConnections (${this.#maxConnections}) client connections`),
      undefined,
      socket,
    );
    if (this.#refusals.size >= MAX_CONCURRENT_REFUSALS) {
      socket.destroy();
      return;
    }
    this.#refusals.add(socket);
    const refusal = new BoltRefusal(socket, {
      code: CONNECTION_LIMIT_CODE,
      message: `neo4j-pool-sidecar: the Bolt proxy is at its limit of ${this.#maxConnections} client connections (proxy.maxConnections); try again later`,
    });
    const timer = setTimeout(() => socket.destroy(), this.#settings.handshakeTimeoutMs);
    socket.on('data', (data: Buffer) => {
      try {
        refusal.feed(data);
      } catch {
        socket.destroy();
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      clearTimeout(timer);
      this.#refusals.delete(socket);
    });
  }

  #onProblem(
    reason: ProblemReason,
    error: Error,
    connection: ProxiedConnection | undefined,
    socket?: net.Socket,
  ): void {
    let log = this.#logProblem.get(reason);
    if (log === undefined) {
      log = rateLimited((fields, message) => this.#logger.warn(fields, message), PROBLEM_LOG_INTERVAL_MS);
      this.#logProblem.set(reason, log);
    }
    const client =
      connection?.remoteAddress ??
      (socket ? formatAddress(socket.remoteAddress ?? 'unknown', socket.remotePort ?? 0) : undefined);
    log(
      {
        reason,
        client,
        ...(connection ? { connection: connection.id, userAgent: connection.userAgent } : {}),
        err: error,
      },
      reason === 'limit' ? 'refused a client connection' : 'closed a client connection',
    );
  }

  /**
   * One coarse timer for every connection (pgbouncer's idle_transaction_timeout): each read of a client
   * only stores a timestamp, so the timeout costs nothing per message and fires up to a tenth late.
   */
  #startIdleTransactionCheck(timeoutMs: number): NodeJS.Timeout | null {
    if (timeoutMs <= 0) return null;
    const everyMs = Math.min(IDLE_CHECK_MAX_MS, Math.max(IDLE_CHECK_MIN_MS, Math.round(timeoutMs / 10)));
    const timer = setInterval(() => {
      const idleSinceMs = performance.now() - timeoutMs;
      for (const connection of this.#connections) {
        if (!connection.closeIfIdleInTransaction(idleSinceMs, timeoutMs)) continue;
        this.#logIdleTransaction(
          { connection: connection.id, client: connection.remoteAddress, userAgent: connection.userAgent, timeoutMs },
          'rolled back and closed a client silent inside its transaction (proxy.idleTransactionTimeoutMs)',
        );
      }
    }, everyMs);
    timer.unref();
    return timer;
  }

  #sample(): void {
    let queriesInFlight = 0;
    for (const connection of this.#connections) {
      connection.flushTraffic();
      queriesInFlight += connection.openQueries;
    }
    this.#metrics.queriesInFlight(queriesInFlight);
    if (this.#pool !== null) {
      const { states, waiting } = this.#poolCounts(this.#pool);
      this.#metrics.poolState(states, waiting, this.#maintenance(this.#pool));
    }
    if (this.#router !== null) {
      const view = this.#router.view();
      const memberStates = new Map<string, Record<UpstreamStateLabel, number>>();
      for (const member of view.members) {
        const pool = this.#router.poolOf(member.address);
        if (pool !== null) memberStates.set(member.address, pool.counts().states);
      }
      this.#metrics.routingState(view, memberStates);
    }
  }

  /** The pool's maintenance state with the clients every member pool holds, and writes held for want of a writer. */
  #maintenance(pool: UpstreamPool): PoolMaintenance {
    const router = this.#router;
    const seed = pool.maintenance;
    if (router === null) return seed;
    const heldBy = { ...seed.heldBy, no_writer: seed.heldBy.no_writer + router.heldForWriter };
    let { held, lent } = seed;
    held += router.heldForWriter;
    for (const member of router.memberPools()) {
      const maintenance = member.maintenance;
      held += maintenance.held;
      lent += maintenance.lent;
      for (const [reason, count] of Object.entries(maintenance.heldBy) as [HoldReason, number][])
        heldBy[reason] += count;
    }
    return { ...seed, held, lent, heldBy };
  }

  /** The pool's upstreams and waiting clients, every cluster member's pool included. */
  #poolCounts(pool: UpstreamPool): { states: Record<UpstreamStateLabel, number>; waiting: number } {
    const { states, waiting } = pool.counts();
    const total = { states: { ...states }, waiting };
    for (const member of this.#router?.memberPools() ?? []) {
      const counts = member.counts();
      for (const [state, count] of Object.entries(counts.states) as [UpstreamStateLabel, number][])
        total.states[state] += count;
      total.waiting += counts.waiting;
    }
    return total;
  }
}

/** How connections meet their clients, chosen once for the proxy's pooling mode. */
function frontFor(pool: UpstreamPool | null, router: ClusterRouter | null): FrontFactory | undefined {
  if (pool === null) return undefined;
  if (pool.mode === 'session') return (host) => new PooledLogin(host, pool);
  return (host) => new TransactionUnits(host, pool, router);
}

export function startBoltProxy(options: BoltProxyOptions): Promise<BoltProxy> {
  return BoltProxy.start(options);
}
