/**
 * Upstream connections shared by client connections. A client is never accepted on a login Neo4j has
 * not accepted: on Bolt 5.1+ every LOGON is sent to Neo4j on the lent upstream (LOGOFF + LOGON, one
 * round trip) unless the same credentials were accepted on that very upstream within authCacheSeconds;
 * before 5.1 the login is in HELLO, so a client gets a fresh upstream unless the cache is on. A failed
 * login is never cached, and the client always gets Neo4j's own answer. With minIdle, Bolt 5.1+ keys in
 * use keep spare upstreams that have done HELLO and no login (#topUp): still no credentials held here.
 *
 * Every step on Neo4j's side runs under the connect timeout (connectTimeoutMs): each of TCP, TLS, the
 * handshake and HELLO of a new upstream, and every exchange of the pool's own (LOGOFF+LOGON, RESET). An
 * upstream that misses it is destroyed (reason no_answer) and its slot freed: a Neo4j frozen, or a load
 * balancer that accepts and never answers, would otherwise hold every slot for as long as it lasts.
 *
 * Holds (pgbouncer's PAUSE, and riding out a Neo4j restart): a checkout that would lend an upstream
 * waits, in arrival order, while the pool is paused or Neo4j is unreachable, for at most holdTimeoutMs
 * (then HoldTimeoutError, which the proxy answers with a transient error drivers retry). Neo4j counts as
 * unreachable once opening an upstream fails (refused, reset, a step past its deadline, or HELLO/LOGON
 * answered DatabaseUnavailable while it starts); then the pool alone retries, one attempt at a time with
 * backoff from 100 ms doubling to 2 s, and releases the held checkouts when an attempt's HELLO succeeds.
 * Only checkouts are held, never a request already sent to Neo4j: nothing is replayed. reconnect() closes
 * every upstream open now at its next return (a generation counter). maintenance says what is held.
 *
 * What it opens, its clock and its random source are passed in (PoolDependencies), so the unit tests
 * drive it with fakes; the defaults are the real ones.
 */
import type { Logger } from '../../logger.ts';
import { BoltSignature, requestMessage } from '../bolt/index.ts';
import type { UpstreamTarget } from '../upstream.ts';
import { hasLogon, type Login, sameLogin, samePrincipal } from './connection-key.ts';
import {
  type ControlReply,
  type PoolableUpstream,
  PooledUpstream,
  UpstreamClosedError,
  type UpstreamOpenOptions,
  type UpstreamState,
} from './pooled-upstream.ts';
import { learnServerVersions, type ServerVersions } from './server-versions.ts';

export type PoolingMode = 'off' | 'session' | 'transaction';

export interface PoolSettings {
  readonly maxUpstreams: number;
  readonly maxUpstreamsPerKey: number;
  readonly acquireTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** Idle upstreams per key the idle timeout leaves open, and that Bolt 5.1+ keys in use are topped up to. */
  readonly minIdle: number;
  readonly maxLifetimeMs: number;
  readonly livenessCheckAfterIdleMs: number;
  readonly authCacheSeconds: number;
  readonly connectTimeoutMs: number;
  readonly maxMessageBytes: number;
  /** Longest a checkout is held (paused, or Neo4j unreachable); 0: outages fail checkouts at once, pauses hold up to maxPauseMs. */
  readonly holdTimeoutMs: number;
  /** A pause left on this long ends by itself (resume), logged and counted. */
  readonly maxPauseMs: number;
}

/** Why a checkout is held: the pool is paused, or Neo4j cannot be reached. */
/** outage: Neo4j unreachable; paused: maintenance; no_writer: cluster routing knows no writer (routing/cluster-router.ts). */
export type HoldReason = 'outage' | 'paused' | 'no_writer';
/** How a hold ended: released (it went on to its upstream), timed_out (holdTimeoutMs), client_left, shutdown. */
export type HoldOutcome = 'released' | 'timed_out' | 'client_left' | 'shutdown';

/**
 * What planned maintenance and the live view read of the pool. `lent`: upstreams lent to clients now; in
 * session mode that is every logged-in client connection (a session keeps its upstream for its life), so
 * a pause there drains only as clients disconnect, and holds only new logins. `pausedSinceMs` is wall
 * time (epoch ms); `pausedForMs` the same span on the pool's clock.
 */
export interface PoolMaintenance {
  readonly paused: boolean;
  readonly pausedSinceMs: number | null;
  readonly pausedForMs: number | null;
  /** Checkouts held now, and by reason. */
  readonly held: number;
  readonly heldBy: Readonly<Record<HoldReason, number>>;
  readonly lent: number;
  /** False from a failed open until the pool's own retry (or any new upstream) gets HELLO answered; always true with holdTimeoutMs 0. */
  readonly neo4jReachable: boolean;
  /** reconnect() calls so far: upstreams opened before the last one are closed at their next return. */
  readonly generation: number;
}

export type CheckoutResult = 'reused' | 'reauthenticated' | 'opened' | 'timed_out';
export type LoginOutcome = 'verified' | 'cached' | 'refused';
export type UpstreamCloseReason =
  | 'idle_timeout'
  | 'max_lifetime'
  | 'reset_failed'
  | 'client_left_mid_message'
  | 'client_changed_login'
  | 'single_use_login'
  | 'login_refused'
  | 'abandoned'
  | 'evicted'
  | 'server_closed'
  | 'server_changed'
  | 'unauthenticated_timeout'
  | 'no_answer'
  | 'database_unavailable'
  | 'reconnect'
  | 'shutdown';
/** Upstreams by what they are doing, as the pool's gauge labels them. */
export type UpstreamStateLabel = 'idle' | 'in_use' | 'opening' | 'resetting';

export interface PoolObserver {
  /** A new upstream's TCP (and TLS) is up. */
  upstreamConnected(seconds: number): void;
  checkout(result: CheckoutResult, waitSeconds: number): void;
  login(outcome: LoginOutcome): void;
  /** `reuses`: times it was lent after the first; null when it was never lent (a pre-warmed one that expired). */
  upstreamClosed(reason: UpstreamCloseReason, reuses: number | null): void;
  /** A held checkout stopped being held, after `seconds`. */
  holdEnded(reason: HoldReason, outcome: HoldOutcome, seconds: number): void;
  /** A pause reached maxPauseMs and the pool resumed by itself. */
  pauseExpired(): void;
}

/** What a client asks for: the settings its upstream must have been opened with. */
export interface UpstreamSpec {
  readonly key: string;
  readonly version: import('../bolt/index.ts').BoltVersion;
  readonly capabilities: bigint;
  /** The client's HELLO as it came, sent to open an upstream for it. */
  readonly hello: Buffer;
}

/** An upstream lent to a client, and Neo4j's reply to relay for its login (HELLO before 5.1, LOGON after). */
export interface Lent<U extends PoolableUpstream = PooledUpstream> {
  readonly upstream: U;
  readonly reply: ControlReply;
  readonly result: Exclude<CheckoutResult, 'timed_out'>;
}

/** A login Neo4j refused: relay `reply` (Neo4j's FAILURE) and close the client, as Neo4j would. */
export interface Refused {
  readonly refused: ControlReply;
}

export class PoolTimeoutError extends Error {}

/** A held checkout reached holdTimeoutMs: the client gets DatabaseUnavailable, which drivers retry. */
export class HoldTimeoutError extends Error {
  constructor(
    readonly reason: HoldReason,
    message: string,
  ) {
    super(message);
  }
}

/** The client of a held checkout left (CheckoutOptions.onHold's cancel was called). */
export class HoldCancelledError extends Error {}

export interface CheckoutOptions {
  /** Transaction mode, after the client's own login was verified: an upstream with the same login needs no new round trip. */
  readonly verifiedLogin?: boolean;
  /**
   * Called each time the checkout is held, with a function that ends the hold (outcome client_left; the
   * checkout then rejects with HoldCancelledError): the connection calls it when its client leaves.
   * Called with null when the hold ends, however it ends.
   */
  readonly onHold?: (cancel: (() => void) | null) => void;
}

const DATABASE_UNAVAILABLE = 'Neo.TransientError.General.DatabaseUnavailable';
/** The pool's retries while Neo4j is unreachable: one at a time, 100 ms doubling to 2 s. */
export const RETRY_FIRST_DELAY_MS = 100;
export const RETRY_MAX_DELAY_MS = 2000;

/** A FAILURE Neo4j sends while it starts (or stops): not an answer to the login, a sign to wait. */
export function isDatabaseUnavailable(reply: ControlReply): boolean {
  if (reply.signature !== BoltSignature.FAILURE) return false;
  const code = reply.metadata?.get('neo4j_code') ?? reply.metadata?.get('code');
  return code === DATABASE_UNAVAILABLE;
}

/** The gauge label of each upstream state; gone ones are not counted. */
export const STATE_LABELS: Readonly<Record<UpstreamState, UpstreamStateLabel | null>> = {
  connecting: 'opening',
  saying_hello: 'opening',
  idle: 'idle',
  exchanging: 'resetting',
  borrowed: 'in_use',
  gone: null,
};
export const SWEEP_INTERVAL_MS = 1000;
const VERIFIED_LOGIN: CheckoutOptions = { verifiedLogin: true };

/** Neo4j's answer to the login an upstream carries: LOGON's SUCCESS on 5.1+, HELLO's before. */
function loginReply(upstream: PoolableUpstream): Buffer | null {
  return hasLogon(upstream.version) ? (upstream.login?.reply ?? null) : upstream.helloReply;
}
/** Lifetimes are spread over their last 20% so a pool opened at once does not reconnect at once. */
export const LIFETIME_SPREAD = 0.2;
/**
 * Neo4j closes a connection that has not logged in 30 s after it opened (measured on 5.26; the default
 * of internal.server.bolt.unauth_connection_timeout in 2026.08 too): a pre-warmed upstream still
 * without a login is closed by the pool before that, so a LOGON sent on it never races Neo4j's close.
 */
export const UNAUTHENTICATED_MAX_AGE_MS = 25_000;

/** The pool's time: now() in ms, and the timers it schedules (the sweep, acquire timeouts, deadlines). */
export interface PoolClock {
  now(): number;
  /** Runs `callback` once after `ms`; the returned function cancels it. Never keeps the process alive. */
  after(ms: number, callback: () => void): () => void;
  /** Runs `callback` every `ms` until the returned function is called. Never keeps the process alive. */
  every(ms: number, callback: () => void): () => void;
}

export const realClock: PoolClock = {
  now: () => performance.now(),
  // Plain timers rather than an aborted timers/promises delay: aborting builds an AbortError (a
  // DOMException with its stack) on every checkout, on the path of every client login.
  after(ms, callback) {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
  every(ms, callback) {
    const timer = setInterval(callback, ms);
    timer.unref();
    return () => clearInterval(timer);
  },
};

/** What the pool opens, its time and its randomness: the real ones by default, fakes in unit tests. */
export interface PoolDependencies<U extends PoolableUpstream> {
  readonly openUpstream: (options: UpstreamOpenOptions) => U;
  /** One handshake of the pool's own to learn the server's versions; null: no manifest. */
  readonly learnServerVersions: () => Promise<ServerVersions | null>;
  readonly clock: PoolClock;
  /** In [0, 1), as Math.random: spreads lifetimes. */
  readonly random: () => number;
}

interface Waiter {
  readonly key: string;
  /** When its checkout first asked: waiters are served in this order. */
  readonly order: number;
  readonly wake: () => void;
}

/** One checkout's asking: when it started, its place among waiters and holds, and its hold bound. */
interface Wait {
  readonly startedMs: number;
  readonly order: number;
  /** acquireTimeoutMs counts from here: the start, or the end of its last hold. */
  acquireFromMs: number;
  /** When it was first held: holdTimeoutMs bounds all its holds together. */
  heldSinceMs: number | null;
  /** Woken by a change (a slot freed, an upstream back) it has not tried to use yet: passed on if it leaves. */
  woken: boolean;
  readonly options: CheckoutOptions;
}

/** A held checkout, in arrival order among the others. */
interface Hold {
  readonly order: number;
  reason: HoldReason;
  readonly end: (outcome: HoldOutcome) => void;
}

/** A Bolt 5.1+ key seen from a client: what to open pre-warmed upstreams with, and when it was last used. */
interface WarmKey {
  spec: UpstreamSpec;
  usedAtMs: number;
}

/**
 * Generic in what it pools only so the unit tests can pool fakes: the proxy pools PooledUpstream.
 */
export class UpstreamPool<U extends PoolableUpstream = PooledUpstream> {
  readonly #mode: Exclude<PoolingMode, 'off'>;
  readonly #settings: PoolSettings;
  readonly #observer: PoolObserver;
  readonly #openUpstream: PoolDependencies<U>['openUpstream'];
  readonly #learnServerVersions: PoolDependencies<U>['learnServerVersions'];
  readonly #clock: PoolClock;
  readonly #random: () => number;
  readonly #all = new Set<U>();
  /** Ready upstreams, most recently returned last (taken from the end: warm connections first). */
  readonly #idle: U[] = [];
  /** Upstreams handed to a client and not yet released: never handed to another meanwhile. */
  readonly #lentOut = new Set<U>();
  /** Per upstream in a step on Neo4j's side: starts that step's deadline again (the next step began). */
  readonly #deadlines = new Map<U, () => void>();
  readonly #perKey = new Map<string, number>();
  readonly #waiters: Waiter[] = [];
  /** HELLO SUCCESS of a real upstream per key, answered to Bolt 5.1+ clients while their LOGON is verified. */
  readonly #helloReplies = new Map<string, Buffer>();
  readonly #closeReasons = new Map<U, UpstreamCloseReason>();
  readonly #warmKeys = new Map<string, WarmKey>();
  /** Pre-warmed upstreams still opening: counted as idle-to-be, and given up when a client needs the slot. */
  readonly #warming = new Set<U>();
  /** Pre-warming failed (Neo4j down, say): one attempt per sweep until one succeeds, logged once per change. */
  #prewarmFailing = false;
  readonly #logger: Logger | null;
  #versions: Promise<ServerVersions | null> | null = null;
  #serverAgent: string | null = null;
  #nextId = 1;
  #nextWaitOrder = 1;
  #closing = false;
  readonly #stopSweeping: () => void;
  readonly #holds: Hold[] = [];
  #pausedAtMs: number | null = null;
  #pausedAtWallMs: number | null = null;
  #cancelMaxPause: (() => void) | null = null;
  #reachable = true;
  /** The last Bolt 5.1+ client settings seen: the pool's retries say HELLO with them (no credentials in it). */
  #retrySpec: UpstreamSpec | null = null;
  #generation = 0;
  readonly #generationOf = new WeakMap<U, number>();
  readonly #drainWatchers = new Set<() => void>();

  constructor(
    target: UpstreamTarget,
    settings: PoolSettings,
    observer: PoolObserver,
    mode: Exclude<PoolingMode, 'off'> = 'session',
    logger: Logger | null = null,
    dependencies: Partial<PoolDependencies<U>> = {},
  ) {
    this.#mode = mode;
    this.#logger = logger;
    this.#settings = settings;
    this.#observer = observer;
    // Without a factory U is PooledUpstream (the default type argument); TypeScript cannot tie the two.
    this.#openUpstream =
      dependencies.openUpstream ?? ((options) => new PooledUpstream(target, options) as PoolableUpstream as U);
    this.#learnServerVersions =
      dependencies.learnServerVersions ?? (() => learnServerVersions(target, settings.connectTimeoutMs));
    this.#clock = dependencies.clock ?? realClock;
    this.#random = dependencies.random ?? Math.random;
    this.#stopSweeping = this.#clock.every(SWEEP_INTERVAL_MS, () => this.#sweep());
  }

  get settings(): PoolSettings {
    return this.#settings;
  }

  get mode(): Exclude<PoolingMode, 'off'> {
    return this.#mode;
  }

  /** The server's version ranges, learnt once (again after the server changed); null: no manifest, pass through. */
  serverVersions(): Promise<ServerVersions | null> {
    this.#versions ??= this.#learnServerVersions().catch((error: unknown) => {
      this.#versions = null;
      throw error;
    });
    return this.#versions;
  }

  recordedHello(key: string): Buffer | null {
    return this.#helloReplies.get(key) ?? null;
  }

  /** Upstreams by state label, and clients waiting for one. */
  counts(): { readonly states: Record<UpstreamStateLabel, number>; readonly waiting: number } {
    const states: Record<UpstreamStateLabel, number> = { idle: 0, in_use: 0, opening: 0, resetting: 0 };
    for (const upstream of this.#all) {
      const label = STATE_LABELS[upstream.state];
      if (label !== null) states[label]++;
    }
    return { states, waiting: this.#waiters.length };
  }

  /** Upstreams by key (and its Bolt version) and state label, for the live view; gone ones are not counted. */
  upstreamsByKey(): Array<{
    readonly key: string;
    readonly bolt: string;
    readonly states: Record<UpstreamStateLabel, number>;
  }> {
    const byKey = new Map<string, { key: string; bolt: string; states: Record<UpstreamStateLabel, number> }>();
    for (const upstream of this.#all) {
      const label = STATE_LABELS[upstream.state];
      if (label === null) continue;
      let entry = byKey.get(upstream.key);
      if (entry === undefined) {
        entry = {
          key: upstream.key,
          bolt: `${upstream.version.major}.${upstream.version.minor}`,
          states: { idle: 0, in_use: 0, opening: 0, resetting: 0 },
        };
        byKey.set(upstream.key, entry);
      }
      entry.states[label]++;
    }
    return [...byKey.values()];
  }

  get maintenance(): PoolMaintenance {
    const heldBy: Record<HoldReason, number> = { outage: 0, paused: 0, no_writer: 0 };
    for (const hold of this.#holds) heldBy[hold.reason]++;
    const pausedForMs = this.#pausedAtMs === null ? null : this.#clock.now() - this.#pausedAtMs;
    return {
      paused: this.#pausedAtMs !== null,
      pausedSinceMs: this.#pausedAtWallMs,
      pausedForMs,
      held: this.#holds.length,
      heldBy,
      lent: this.#lentOut.size,
      neo4jReachable: this.#reachable,
      generation: this.#generation,
    };
  }

  /**
   * From now every checkout that would lend an upstream (a new login's, a transaction-mode unit's) is
   * held in arrival order; what is lent stays lent (an open transaction finishes on its upstream). Ends
   * by resume(), or by itself after maxPauseMs (logged, counted). Pausing again keeps the first start.
   */
  pause(): void {
    if (this.#pausedAtMs !== null || this.#closing) return;
    this.#pausedAtMs = this.#clock.now();
    this.#pausedAtWallMs = Date.now();
    const maxPauseMs = this.#settings.maxPauseMs;
    this.#cancelMaxPause = this.#clock.after(maxPauseMs, () => {
      this.#logger?.warn(
        { maxPauseMs, held: this.#holds.length },
        'the Bolt proxy pause reached proxy.pooling.maxPauseMs; resuming by itself',
      );
      this.#observer.pauseExpired();
      this.resume();
    });
  }

  /** Ends a pause: held checkouts go on in arrival order, within maxUpstreams (the rest wait as usual). */
  resume(): void {
    if (this.#pausedAtMs === null) return;
    this.#pausedAtMs = null;
    this.#pausedAtWallMs = null;
    this.#cancelMaxPause?.();
    this.#cancelMaxPause = null;
    this.#releaseHolds();
  }

  /**
   * Every upstream open now is closed at its next return (idle and pre-warming ones at once), reason
   * reconnect; new ones are opened fresh. For a Neo4j moved behind the same address, or new settings.
   */
  reconnect(): void {
    this.#generation++;
    for (const upstream of [...this.#idle, ...this.#warming]) {
      this.#warming.delete(upstream);
      this.#destroy(upstream, 'reconnect');
    }
  }

  /**
   * True once no upstream is lent (every unit of work, in session mode every session, has ended); false
   * when `timeoutMs` passes first. With a pause on, nothing new is lent meanwhile.
   */
  whenDrained(timeoutMs: number): Promise<boolean> {
    if (this.#lentOut.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const watcher = () => {
        cancel();
        this.#drainWatchers.delete(watcher);
        resolve(true);
      };
      const cancel = this.#clock.after(timeoutMs, () => {
        this.#drainWatchers.delete(watcher);
        resolve(false);
      });
      this.#drainWatchers.add(watcher);
    });
  }

  /**
   * A Bolt 5.1+ client's HELLO when no reply is recorded for its settings yet: opens an upstream with that
   * HELLO and holds it for the client's LOGON. No upstream when another client's recorded the reply meanwhile.
   */
  async openWithHello(
    spec: UpstreamSpec,
    options: CheckoutOptions = {},
  ): Promise<{ upstream: U | null; reply: ControlReply }> {
    const wait = this.#startWait(options);
    this.#noteSpec(spec);
    for (;;) {
      await this.#admit(wait);
      // Something was returned or closed: another client's upstream may have recorded the reply meanwhile.
      const recorded = this.#helloReplies.get(spec.key);
      if (recorded !== undefined) {
        // It needs no upstream after all: the change it may have been woken for goes to the next waiter.
        this.#passOnWakeUp(wait);
        return { upstream: null, reply: { signature: BoltSignature.SUCCESS, payload: recorded, metadata: null } };
      }
      const opened = await this.#openNew(spec, wait);
      if (opened === null) continue;
      const { upstream, reply } = opened;
      if (reply.signature !== BoltSignature.SUCCESS) this.#destroy(upstream, 'server_closed');
      return opened;
    }
  }

  /** Bolt 5.1+: an upstream logged in with the client's LOGON, verified by Neo4j unless cached. */
  async checkoutForLogon(
    spec: UpstreamSpec,
    login: Login,
    logon: Buffer,
    held: U | null,
    options: CheckoutOptions = {},
  ): Promise<Lent<U> | Refused> {
    const wait = this.#startWait(options);
    const { startedMs } = wait;
    this.#used(spec.key, spec);
    this.#noteSpec(spec);
    for (;;) {
      if (this.#holdReason() !== null && held !== null) {
        // Its HELLO-only upstream waits idle, as a pre-warmed one would, rather than lent on release.
        if (held.state === 'saying_hello') this.#keep(held);
        else this.#destroy(held, 'abandoned');
        held = null;
      }
      await this.#admit(wait);
      let upstream = held;
      held = null;
      let opened = upstream !== null;
      if (upstream === null) {
        const cached = this.#takeIdle(spec.key, (candidate) => this.#loginCached(candidate, login, options));
        if (cached !== null) {
          if (await this.#alive(cached)) {
            const reply = cached.login?.reply;
            if (reply !== undefined) {
              if (options.verifiedLogin !== true) this.#observer.login('cached');
              return this.#lend(
                cached,
                { signature: BoltSignature.SUCCESS, payload: reply, metadata: null },
                'reused',
                startedMs,
              );
            }
          }
          continue;
        }
        // A pre-warmed one first: it is used before it expires, and LOGON alone suffices on it.
        upstream =
          this.#takeIdle(spec.key, (candidate) => candidate.login === null) ?? this.#takeIdle(spec.key, () => true);
        if (upstream === null) {
          const fresh = await this.#openNew(spec, wait);
          if (fresh === null) continue;
          upstream = fresh.upstream;
          const hello = fresh.reply;
          if (hello.signature !== BoltSignature.SUCCESS) {
            this.#destroy(upstream, 'server_closed');
            return { refused: hello };
          }
          opened = true;
        }
      }
      const loggedIn = upstream.login !== null;
      const messages = loggedIn ? Buffer.concat([requestMessage(BoltSignature.LOGOFF), logon]) : logon;
      // Timed: an upstream a firewall silently dropped while idle would otherwise hold the client forever.
      const replies = await this.#exchange(upstream, messages, loggedIn ? 2 : 1);
      const summaries = replies?.filter((reply) => reply.signature !== BoltSignature.RECORD) ?? [];
      const logoffOk = !loggedIn || summaries[0]?.signature === BoltSignature.SUCCESS;
      const answer = summaries[loggedIn ? 1 : 0];
      if (!logoffOk || answer === undefined) {
        // The upstream died idle (a restarted server, say): not the client's doing, try another.
        this.#destroy(upstream, 'server_closed');
        if (opened) {
          const error = new UpstreamClosedError('Neo4j closed the connection before answering LOGON');
          if (this.#outage(error)) continue;
          throw error;
        }
        continue;
      }
      if (this.#startingUp(upstream, answer)) continue;
      if (answer.signature !== BoltSignature.SUCCESS) {
        this.#refused(upstream, login);
        return { refused: answer };
      }
      this.#observer.login('verified');
      upstream.login = { login, verifiedAtMs: this.#clock.now(), reply: answer.payload };
      return this.#lend(upstream, answer, opened ? 'opened' : 'reauthenticated', startedMs);
    }
  }

  /** Before Bolt 5.1: the login is in HELLO, so a fresh upstream, or with the cache on one that took this login. */
  async checkoutForHello(spec: UpstreamSpec, login: Login, options: CheckoutOptions = {}): Promise<Lent<U> | Refused> {
    const wait = this.#startWait(options);
    const { startedMs } = wait;
    for (;;) {
      await this.#admit(wait);
      const cached = this.#takeIdle(spec.key, (candidate) => this.#loginCached(candidate, login, options));
      if (cached !== null) {
        if (!(await this.#alive(cached)) || cached.helloReply === null) continue;
        if (options.verifiedLogin !== true) this.#observer.login('cached');
        return this.#lend(
          cached,
          { signature: BoltSignature.SUCCESS, payload: cached.helloReply, metadata: null },
          'reused',
          startedMs,
        );
      }
      const opened = await this.#openNew(spec, wait);
      if (opened === null) continue;
      const { upstream, reply } = opened;
      if (reply.signature !== BoltSignature.SUCCESS) {
        this.#refused(upstream, login);
        return { refused: reply };
      }
      this.#observer.login('verified');
      upstream.login = { login, verifiedAtMs: this.#clock.now(), reply: reply.payload };
      return this.#lend(upstream, reply, 'opened', startedMs);
    }
  }

  /**
   * Transaction mode's next unit for a client whose own login Neo4j already verified: an idle upstream
   * logged in with the same credentials and used recently enough to need no liveness check, lent at
   * once (no promise, no round trip); null when there is none or checkouts are held, and the client
   * takes the full checkout.
   */
  lendIdleVerified(spec: UpstreamSpec, login: Login): Lent<U> | null {
    // Paused, or Neo4j unreachable: the full checkout holds it like any other.
    if (this.#holdReason() !== null) return null;
    this.#noteSpec(spec);
    const startedMs = this.#clock.now();
    const fresh = startedMs - this.#settings.livenessCheckAfterIdleMs;
    const upstream = this.#takeIdle(
      spec.key,
      (candidate) =>
        candidate.readyAtMs > fresh &&
        loginReply(candidate) !== null &&
        this.#loginCached(candidate, login, VERIFIED_LOGIN),
    );
    if (upstream === null) return null;
    this.#used(spec.key, spec);
    const reply = loginReply(upstream) as Buffer;
    return this.#lend(
      upstream,
      { signature: BoltSignature.SUCCESS, payload: reply, metadata: null },
      'reused',
      startedMs,
    );
  }

  /**
   * The client is done with `upstream`. Reused only after RESET and its SUCCESS (every reply the client
   * still had coming is read and dropped first); destroyed when that cannot be made safe.
   */
  release(
    upstream: U,
    outcome:
      | { readonly pendingSummaries: number; readonly ready?: boolean }
      | { readonly destroy: UpstreamCloseReason },
  ): void {
    upstream.takeBack();
    this.#lentOut.delete(upstream);
    this.#lentChanged();
    this.#used(upstream.key);
    if (upstream.state === 'gone') return;
    let reason: UpstreamCloseReason | null = 'destroy' in outcome ? outcome.destroy : null;
    if (reason === null && this.#closing) reason = 'shutdown';
    if (reason === null && this.#stale(upstream)) reason = 'reconnect';
    if (reason === null && this.#clock.now() >= upstream.expiresAtMs) reason = 'max_lifetime';
    if (
      reason === null &&
      this.#mode === 'session' &&
      this.#settings.authCacheSeconds === 0 &&
      !hasLogon(upstream.version)
    ) {
      // Only this client could use it again (the login is in HELLO), and in session mode it has left.
      reason = 'single_use_login';
    }
    if (reason !== null || 'destroy' in outcome) {
      this.#destroy(upstream, reason ?? 'shutdown');
      return;
    }
    if (outcome.ready === true && outcome.pendingSummaries === 0) {
      this.#keep(upstream);
      return;
    }
    void this.#resetAndKeep(upstream, outcome.pendingSummaries);
  }

  /** Closes every upstream: idle ones now, lent ones as their clients finish (release destroys them). */
  close(): void {
    this.#closing = true;
    this.#stopSweeping();
    this.#cancelMaxPause?.();
    for (const upstream of [...this.#idle, ...this.#warming]) this.#destroy(upstream, 'shutdown');
    for (const waiter of this.#waiters.splice(0)) waiter.wake();
    for (const hold of [...this.#holds]) hold.end('shutdown');
  }

  async #resetAndKeep(upstream: U, pendingSummaries: number): Promise<void> {
    const replies = await this.#exchange(upstream, requestMessage(BoltSignature.RESET), pendingSummaries + 1);
    const last = replies?.at(-1);
    if (last?.signature !== BoltSignature.SUCCESS) {
      this.#destroy(upstream, 'reset_failed');
      return;
    }
    if (this.#closing) {
      this.#destroy(upstream, 'shutdown');
      return;
    }
    this.#keep(upstream);
  }

  #keep(upstream: U): void {
    if (this.#stale(upstream)) {
      this.#destroy(upstream, 'reconnect');
      return;
    }
    upstream.markReady();
    this.#idle.push(upstream);
    this.#wakeWaiters(upstream.key);
  }

  /** A liveness RESET for an upstream idle longer than livenessCheckAfterIdleMs; false: it was dead and is gone. */
  async #alive(upstream: U): Promise<boolean> {
    if (this.#clock.now() - upstream.readyAtMs < this.#settings.livenessCheckAfterIdleMs) return true;
    const replies = await this.#exchange(upstream, requestMessage(BoltSignature.RESET), 1);
    if (replies?.at(-1)?.signature === BoltSignature.SUCCESS) return true;
    this.#destroy(upstream, 'reset_failed');
    return false;
  }

  /**
   * An exchange of the proxy's own on an upstream lent to it, not to a client (cluster routing's ROUTE),
   * under the same deadline as the pool's; null when it failed or missed it (the upstream is then gone).
   */
  exchange(upstream: U, messages: Buffer, summaries: number): Promise<ControlReply[] | null> {
    if (!this.#lentOut.has(upstream)) throw new Error(`upstream ${upstream.id} is not lent`);
    return this.#exchange(upstream, messages, summaries);
  }

  /** Upstreams lent out now: cluster routing sends reads to the member with the fewest. */
  get lentCount(): number {
    return this.#lentOut.size;
  }

  /** One of the pool's own exchanges (LOGOFF+LOGON, RESET), under the deadline; null when it failed or missed it. */
  #exchange(upstream: U, messages: Buffer, summaries: number): Promise<ControlReply[] | null> {
    return this.#underDeadline(upstream, upstream.control(messages, summaries));
  }

  /**
   * `work`'s result, or null when it failed or Neo4j did not answer within connectTimeoutMs; then the
   * upstream is destroyed at once (reason no_answer), which frees its slot. Opening restarts the
   * deadline at each step that completes (TCP or TLS up, handshake answered), so each step has the whole
   * timeout, as on a direct connection.
   */
  #underDeadline<T>(upstream: U, work: Promise<T>): Promise<T | null> {
    return new Promise((resolve) => {
      const timeoutMs = this.#settings.connectTimeoutMs;
      const expire = () => {
        this.#deadlines.delete(upstream);
        this.#destroy(upstream, 'no_answer');
        resolve(null);
      };
      let cancel = this.#clock.after(timeoutMs, expire);
      this.#deadlines.set(upstream, () => {
        cancel();
        cancel = this.#clock.after(timeoutMs, expire);
      });
      const settle = (result: T | null) => {
        cancel();
        this.#deadlines.delete(upstream);
        resolve(result);
      };
      work.then(settle, () => settle(null));
    });
  }

  #noHelloAnswer(): UpstreamClosedError {
    return new UpstreamClosedError(
      `Neo4j left a step of a new connection (TCP, TLS, handshake, HELLO) unanswered for ${this.#settings.connectTimeoutMs} ms (neo4j.connectionTimeoutMs)`,
    );
  }

  /**
   * Neo4j refused `login`. Its other logins of the same user stop counting as cached: a direct client's
   * next correct login reaches Neo4j and resets the user's count of failed logins, so through the pool
   * it must too, or a user alternating right and wrong passwords would be locked out here and not direct.
   */
  #refused(upstream: U, login: Login): void {
    this.#observer.login('refused');
    this.#destroy(upstream, 'login_refused');
    for (const other of this.#all) {
      if (other.login !== null && samePrincipal(other.login.login, login)) {
        other.login = { ...other.login, verifiedAtMs: Number.NEGATIVE_INFINITY };
      }
    }
  }

  /**
   * An idle upstream that may serve `login` with no round trip: logged in with the same credentials,
   * accepted by Neo4j within authCacheSeconds, or at any time when this client's own login was already
   * verified (a later transaction of a client in transaction mode, as a direct connection stays logged in).
   */
  #loginCached(upstream: U, login: Login, options: CheckoutOptions): boolean {
    const known = upstream.login;
    if (known === null || !sameLogin(known.login, login)) return false;
    if (options.verifiedLogin === true) return true;
    const windowMs = this.#settings.authCacheSeconds * 1000;
    return windowMs > 0 && this.#clock.now() - known.verifiedAtMs <= windowMs;
  }

  #takeIdle(key: string, accept: (upstream: U) => boolean): U | null {
    for (let index = this.#idle.length - 1; index >= 0; index--) {
      const upstream = this.#idle[index] as U;
      if (upstream.key !== key || !accept(upstream)) continue;
      this.#idle.splice(index, 1);
      return upstream;
    }
    return null;
  }

  #lend(upstream: U, reply: ControlReply, result: Lent['result'], startedMs: number): Lent<U> {
    if (this.#lentOut.has(upstream)) throw new Error(`upstream ${upstream.id} is already lent`);
    this.#lentOut.add(upstream);
    upstream.lends++;
    this.#observer.checkout(result, (this.#clock.now() - startedMs) / 1000);
    return { upstream, reply, result };
  }

  /**
   * A new upstream and Neo4j's answer to its HELLO; null when the checkout is to look again: it waited
   * for a slot, or Neo4j could not be reached or is starting and the checkout will be held. Throws when
   * Neo4j cannot be reached and holding is off (holdTimeoutMs 0), as before holding.
   */
  async #openNew(spec: UpstreamSpec, wait: Wait): Promise<{ upstream: U; reply: ControlReply } | null> {
    const upstream = await this.#openSlot(spec, wait);
    if (upstream === null) return null;
    const reply = await this.#sayHello(upstream, spec);
    if (reply instanceof UpstreamClosedError) {
      if (this.#outage(reply)) return null;
      throw reply;
    }
    if (this.#startingUp(upstream, reply)) return null;
    return { upstream, reply };
  }

  /**
   * Opens a new upstream through to Neo4j's answer to `spec`'s HELLO, each step under the deadline, and
   * records what that answer says of the server; when it failed or missed a deadline (then gone), why:
   * a refused connection or certificate is told as such, not as a silence.
   */
  async #sayHello(upstream: U, spec: UpstreamSpec): Promise<ControlReply | UpstreamClosedError> {
    const hello = upstream
      .handshakeAndHello(spec.capabilities, spec.hello)
      .catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))));
    const reply = await this.#underDeadline(upstream, hello);
    if (reply === null || reply instanceof Error) {
      this.#destroy(upstream, 'server_closed');
      if (reply === null) return this.#noHelloAnswer();
      return reply instanceof UpstreamClosedError ? reply : new UpstreamClosedError(reply.message, { cause: reply });
    }
    if (reply.signature === BoltSignature.SUCCESS) {
      // The pool's own retry says so itself once its upstream is idle, for the first released to take.
      if (!this.#warming.has(upstream)) this.#reachableAgain();
      const agent = upstream.serverAgent;
      if (this.#serverAgent !== null && agent !== this.#serverAgent) this.#serverChanged();
      this.#serverAgent = agent;
      this.#helloReplies.set(spec.key, reply.payload);
    }
    return reply;
  }

  /** A new upstream reports another server agent: Neo4j was replaced; what the pool learnt of it is stale. */
  #serverChanged(): void {
    this.#versions = null;
    this.#helloReplies.clear();
    for (const upstream of [...this.#idle]) this.#destroy(upstream, 'server_changed');
  }

  /** A client starts asking: its place among waiters and holds is kept for as long as it asks. */
  #startWait(options: CheckoutOptions): Wait {
    const now = this.#clock.now();
    return {
      startedMs: now,
      order: this.#nextWaitOrder++,
      acquireFromMs: now,
      heldSinceMs: null,
      woken: false,
      options,
    };
  }

  #noteSpec(spec: UpstreamSpec): void {
    if (hasLogon(spec.version)) this.#retrySpec = spec;
  }

  #stale(upstream: U): boolean {
    return (this.#generationOf.get(upstream) ?? this.#generation) !== this.#generation;
  }

  #lentChanged(): void {
    if (this.#lentOut.size > 0) return;
    for (const watcher of [...this.#drainWatchers]) watcher();
  }

  /** Why a checkout must be held now; null: it may go on. */
  #holdReason(): HoldReason | null {
    if (this.#closing) return null;
    if (this.#pausedAtMs !== null) return 'paused';
    if (!this.#reachable && this.#settings.holdTimeoutMs > 0) return 'outage';
    return null;
  }

  /**
   * Returns once the checkout may go on; held (in arrival order) while paused or Neo4j is unreachable.
   * A checkout once held ends holdTimeoutMs after its first hold, whatever it met since (a release into
   * a Neo4j still starting, say): only a step already under way, itself under its deadline, runs past.
   */
  async #admit(wait: Wait): Promise<void> {
    const holdTimeoutMs = this.#settings.holdTimeoutMs;
    if (wait.heldSinceMs !== null && holdTimeoutMs > 0 && this.#clock.now() - wait.heldSinceMs >= holdTimeoutMs) {
      // Its holds were counted as they ended (released); this ends the checkout, not a hold.
      throw this.#holdTimedOut(this.#holdReason() ?? 'outage');
    }
    for (let reason = this.#holdReason(); reason !== null; reason = this.#holdReason()) {
      try {
        await this.#hold(wait, reason);
      } catch (error) {
        // Woken, then held, and now it gives up: what woke it must not be lost with it.
        this.#passOnWakeUp(wait);
        throw error;
      }
      wait.acquireFromMs = this.#clock.now();
    }
  }

  #hold(wait: Wait, reason: HoldReason): Promise<void> {
    const startMs = this.#clock.now();
    const heldSinceMs = wait.heldSinceMs ?? startMs;
    wait.heldSinceMs = heldSinceMs;
    const holdTimeoutMs = this.#settings.holdTimeoutMs;
    return new Promise((resolve, reject) => {
      let cancelTimer = () => {};
      let ended = false;
      const hold: Hold = {
        order: wait.order,
        reason,
        end: (outcome) => {
          if (ended) return;
          ended = true;
          cancelTimer();
          const index = this.#holds.indexOf(hold);
          if (index >= 0) this.#holds.splice(index, 1);
          this.#observer.holdEnded(hold.reason, outcome, (this.#clock.now() - startMs) / 1000);
          wait.options.onHold?.(null);
          if (outcome === 'released') resolve();
          else if (outcome === 'client_left') reject(new HoldCancelledError('the client left while held'));
          else if (outcome === 'shutdown') reject(new UpstreamClosedError('the proxy is shutting down'));
          else reject(this.#holdTimedOut(hold.reason));
        },
      };
      let index = this.#holds.length;
      while (index > 0 && (this.#holds[index - 1] as Hold).order > wait.order) index--;
      this.#holds.splice(index, 0, hold);
      if (holdTimeoutMs > 0) {
        cancelTimer = this.#clock.after(heldSinceMs + holdTimeoutMs - startMs, () => hold.end('timed_out'));
      }
      wait.options.onHold?.(() => hold.end('client_left'));
    });
  }

  #holdTimedOut(reason: HoldReason): HoldTimeoutError {
    const why =
      reason === 'paused'
        ? 'the Bolt proxy is paused for maintenance'
        : 'Neo4j could not be reached (connection refused, reset or unanswered)';
    return new HoldTimeoutError(
      reason,
      `${why}; held for proxy.pooling.holdTimeoutMs (${this.#settings.holdTimeoutMs} ms), try again`,
    );
  }

  /** Held checkouts go on, in arrival order, once nothing holds them; else they take the reason that still does. */
  #releaseHolds(): void {
    const reason = this.#holdReason();
    if (reason !== null) {
      for (const hold of this.#holds) hold.reason = reason;
      return;
    }
    for (const hold of this.#holds.slice()) hold.end('released');
  }

  /**
   * Opening an upstream failed as it does when Neo4j cannot be reached: the pool marks it unreachable
   * and retries by itself. True: the checkout is to be held (holding is on), false: it fails as before.
   */
  #outage(cause: Error): boolean {
    // Holding off: each client finds out for itself, as direct, and the pool does not retry for them.
    if (this.#closing || this.#settings.holdTimeoutMs === 0) return false;
    if (this.#reachable) {
      this.#reachable = false;
      this.#logger?.warn(
        { err: cause, holdTimeoutMs: this.#settings.holdTimeoutMs },
        'Neo4j unreachable from the Bolt proxy pool; clients that need a connection are held (proxy.pooling.holdTimeoutMs) while the pool retries',
      );
      void this.#retryUntilReachable();
    }
    return this.#settings.holdTimeoutMs > 0;
  }

  /**
   * Neo4j answered DatabaseUnavailable (it is starting): never relayed while holding, the upstream is
   * closed and the checkout held until the pool's retry gets through. False: any other answer.
   */
  #startingUp(upstream: U, reply: ControlReply): boolean {
    if (!isDatabaseUnavailable(reply) || this.#settings.holdTimeoutMs === 0 || this.#closing) return false;
    this.#destroy(upstream, 'database_unavailable');
    return this.#outage(new UpstreamClosedError('Neo4j answered: database unavailable (starting)'));
  }

  #reachableAgain(): void {
    if (this.#reachable) return;
    this.#reachable = true;
    this.#logger?.info({ held: this.#holds.length }, 'Neo4j reachable again from the Bolt proxy pool');
    this.#releaseHolds();
  }

  /** One attempt at a time, 100 ms doubling to 2 s between them, until one gets HELLO answered. */
  async #retryUntilReachable(): Promise<void> {
    let delayMs = RETRY_FIRST_DELAY_MS;
    while (!this.#reachable && !this.#closing) {
      await new Promise<void>((resolve) => this.#clock.after(delayMs, resolve));
      if (this.#reachable || this.#closing) return;
      await this.#retryOnce();
      delayMs = Math.min(delayMs * 2, RETRY_MAX_DELAY_MS);
    }
  }

  /**
   * Opens an upstream with the last Bolt 5.1+ client's HELLO (it carries no credentials); kept idle as a
   * pre-warmed one when it succeeds, so the first released client pays only its LOGON. With no such
   * client seen, the pool's own handshake (no HELLO) is the attempt.
   */
  async #retryOnce(): Promise<void> {
    const spec = this.#retrySpec;
    if (spec === null) {
      try {
        await this.#learnServerVersions();
        this.#reachableAgain();
      } catch {
        // Still unreachable: the next attempt after the backoff.
      }
      return;
    }
    if (!this.#makeRoom(spec.key)) return;
    const opened = await this.#openSpare(spec);
    if (opened === null || opened.reply instanceof UpstreamClosedError) return;
    if (this.#startingUp(opened.upstream, opened.reply)) return;
    if (this.#keepIfReady(opened.upstream, opened.reply)) this.#reachableAgain();
    else this.#destroy(opened.upstream, 'server_closed');
  }

  /**
   * A new upstream for `spec`, opened in a free slot (closing an idle one of another key if that makes
   * room); null after waiting for an upstream to come back or close, so the caller looks for an idle one
   * again. Throws PoolTimeoutError once acquireTimeoutMs has passed. The slot is taken before the first
   * await: checkouts in one tick cannot all see the same free slot.
   */
  async #openSlot(spec: UpstreamSpec, wait: Wait): Promise<U | null> {
    if (this.#closing) throw new UpstreamClosedError('the proxy is shutting down');
    // Its wake-up is used here: it takes the slot, or finds it taken and waits again.
    wait.woken = false;
    if (this.#makeRoom(spec.key)) return this.#create(spec);
    const remaining = this.#settings.acquireTimeoutMs - (this.#clock.now() - wait.acquireFromMs);
    if (remaining <= 0 || !(await this.#waitForChange(spec.key, remaining, wait))) {
      this.#observer.checkout('timed_out', (this.#clock.now() - wait.startedMs) / 1000);
      throw new PoolTimeoutError(
        `no Neo4j connection free within proxy.pooling.acquireTimeoutMs (${this.#settings.acquireTimeoutMs} ms): ${this.#all.size} of proxy.pooling.maxUpstreams (${this.#settings.maxUpstreams}) in use`,
      );
    }
    return null;
  }

  /** True when an upstream of `key` may be opened now, after closing what must go to make room. */
  #makeRoom(key: string): boolean {
    const spare = this.#roomFor(key);
    if (spare === null) return false;
    if (spare !== 'free') {
      this.#warming.delete(spare);
      this.#destroy(spare, 'evicted');
    }
    return true;
  }

  /** What would make room for an upstream of `key`: a free slot, an upstream to evict, or nothing (null). */
  #roomFor(key: string): 'free' | U | null {
    if ((this.#perKey.get(key) ?? 0) < this.#settings.maxUpstreamsPerKey) {
      if (this.#all.size < this.#settings.maxUpstreams) return 'free';
      return (
        this.#idle.find((upstream) => upstream.key !== key) ??
        this.#idle[0] ??
        // A client goes before a pre-warm; one of its own key is left to finish, it will serve it.
        [...this.#warming].find((upstream) => upstream.key !== key && upstream.state !== 'gone') ??
        null
      );
    }
    // At the per-key limit with an idle one of this key that could not serve (another login before 5.1).
    return this.#idle.find((upstream) => upstream.key === key) ?? null;
  }

  /** Resolves true when an upstream was returned or closed, false when `timeoutMs` passed first. */
  #waitForChange(key: string, timeoutMs: number, wait: Wait): Promise<boolean> {
    const { order } = wait;
    return new Promise((resolve) => {
      const waiter: Waiter = {
        key,
        order,
        wake: () => {
          cancel();
          wait.woken = true;
          resolve(true);
        },
      };
      const cancel = this.#clock.after(timeoutMs, () => {
        const index = this.#waiters.indexOf(waiter);
        if (index >= 0) this.#waiters.splice(index, 1);
        resolve(false);
      });
      // In order of first asking: one woken by a change it could not use goes back to its place.
      let index = this.#waiters.length;
      while (index > 0 && (this.#waiters[index - 1] as Waiter).order > order) index--;
      this.#waiters.splice(index, 0, waiter);
    });
  }

  /**
   * Wakes the longest waiter that can use the change: one of `key` when an upstream of that key came
   * back idle, else the first that may open an upstream now (its key under maxUpstreamsPerKey and room
   * in the pool). Waking one that cannot would lose the change for the others.
   */
  #wakeWaiters(key: string | null): void {
    let index = key === null ? -1 : this.#waiters.findIndex((waiter) => waiter.key === key);
    if (index < 0) index = this.#waiters.findIndex((waiter) => this.#roomFor(waiter.key) !== null);
    if (index < 0) return;
    const [waiter] = this.#waiters.splice(index, 1);
    waiter?.wake();
  }

  /**
   * A checkout woken for a change leaves without using it (another client recorded its HELLO reply, or
   * its hold ended): the next waiter that can use the change is woken, else a free slot would sit beside
   * it until its acquireTimeoutMs. One of a key with an idle upstream first, as #keep would have chosen.
   */
  #passOnWakeUp(wait: Wait): void {
    if (!wait.woken) return;
    wait.woken = false;
    const idleKey = this.#waiters.find((waiter) => this.#idle.some((upstream) => upstream.key === waiter.key))?.key;
    this.#wakeWaiters(idleKey ?? null);
  }

  #create(spec: UpstreamSpec): U {
    const spread = 1 - LIFETIME_SPREAD * this.#random();
    const upstream = this.#openUpstream({
      id: this.#nextId++,
      key: spec.key,
      version: spec.version,
      capabilities: spec.capabilities,
      maxMessageBytes: this.#settings.maxMessageBytes,
      lifetimeMs: this.#settings.maxLifetimeMs * spread,
      now: this.#clock.now,
      onConnected: (seconds) => {
        this.#deadlines.get(upstream)?.();
        this.#observer.upstreamConnected(seconds);
      },
      onState: (_changed, from, to) => {
        if (from === 'connecting' && to === 'saying_hello') this.#deadlines.get(upstream)?.();
        if (to === 'gone') this.#forget(upstream);
      },
    });
    this.#all.add(upstream);
    this.#generationOf.set(upstream, this.#generation);
    this.#perKey.set(spec.key, (this.#perKey.get(spec.key) ?? 0) + 1);
    return upstream;
  }

  #destroy(upstream: U, reason: UpstreamCloseReason): void {
    // Counted out already: the first reason stands.
    if (!this.#all.has(upstream) || this.#closeReasons.has(upstream)) return;
    this.#closeReasons.set(upstream, reason);
    upstream.destroy();
    // Counted out now, not at the socket's close event, so a slot freed here can be taken at once.
    this.#forget(upstream);
  }

  #forget(upstream: U): void {
    if (!this.#all.delete(upstream)) return;
    if (this.#lentOut.delete(upstream)) this.#lentChanged();
    const index = this.#idle.indexOf(upstream);
    if (index >= 0) this.#idle.splice(index, 1);
    const left = (this.#perKey.get(upstream.key) ?? 1) - 1;
    if (left > 0) this.#perKey.set(upstream.key, left);
    else this.#perKey.delete(upstream.key);
    const reason = this.#closeReasons.get(upstream) ?? 'server_closed';
    this.#closeReasons.delete(upstream);
    this.#observer.upstreamClosed(reason, upstream.lends === 0 ? null : upstream.lends - 1);
    this.#wakeWaiters(null);
  }

  #sweep(): void {
    const now = this.#clock.now();
    const idlePerKey = new Map<string, number>();
    for (const upstream of this.#idle) idlePerKey.set(upstream.key, (idlePerKey.get(upstream.key) ?? 0) + 1);
    // Oldest first (the front of the list), so the warmest ones are the ones kept.
    for (const upstream of [...this.#idle]) {
      const idleOfKey = idlePerKey.get(upstream.key) ?? 0;
      let reason: UpstreamCloseReason | null = null;
      if (now >= upstream.expiresAtMs) reason = 'max_lifetime';
      else if (upstream.login === null && now - upstream.createdAtMs >= UNAUTHENTICATED_MAX_AGE_MS) {
        reason = 'unauthenticated_timeout';
      } else if (now - upstream.readyAtMs >= this.#settings.idleTimeoutMs && idleOfKey > this.#settings.minIdle) {
        reason = 'idle_timeout';
      }
      if (reason === null) continue;
      idlePerKey.set(upstream.key, idleOfKey - 1);
      this.#destroy(upstream, reason);
    }
    for (const key of [...this.#warmKeys.keys()]) this.#topUp(key, true);
  }

  /** A client checked out or returned an upstream of this key: it is in use, and its spare ones may be short now. */
  #used(key: string, spec?: UpstreamSpec): void {
    if (this.#settings.minIdle === 0) return;
    const known = this.#warmKeys.get(key);
    if (known !== undefined) known.usedAtMs = this.#clock.now();
    // Before 5.1 the login is in HELLO: an upstream opened without a client's login would suit nobody.
    else if (spec !== undefined && hasLogon(spec.version))
      this.#warmKeys.set(key, { spec, usedAtMs: this.#clock.now() });
    else return;
    // After the client has its upstream, not before: opening sockets must not delay its answer.
    setImmediate(() => this.#topUp(key, false));
  }

  /**
   * Opens upstreams with HELLO and no login until `key` has minIdle idle ones, as pgbouncer's
   * min_pool_size does: a burst beyond the idle upstreams then pays one LOGON round trip instead of
   * TCP, TLS, handshake and HELLO, with no credentials ever held here. Only into free slots and never
   * while a client waits; a key unused for idleTimeoutMs is forgotten, so one seen once holds nothing
   * for ever. While pre-warming fails only the sweep retries, one upstream at a time.
   */
  #topUp(key: string, fromSweep: boolean): void {
    const warm = this.#warmKeys.get(key);
    if (warm === undefined || this.#closing || this.#waiters.length > 0 || this.#holdReason() !== null) return;
    if (this.#clock.now() - warm.usedAtMs > this.#settings.idleTimeoutMs) {
      this.#warmKeys.delete(key);
      return;
    }
    if (this.#prewarmFailing && (!fromSweep || this.#warming.size > 0)) return;
    let spare = 0;
    for (const upstream of [...this.#idle, ...this.#warming]) if (upstream.key === key) spare++;
    let missing = this.#prewarmFailing ? Math.min(1, this.#settings.minIdle - spare) : this.#settings.minIdle - spare;
    while (
      missing-- > 0 &&
      this.#all.size < this.#settings.maxUpstreams &&
      (this.#perKey.get(key) ?? 0) < this.#settings.maxUpstreamsPerKey
    ) {
      void this.#prewarm(warm.spec);
    }
  }

  /**
   * Opens an upstream with HELLO and no login, counted as warming (a client needing the slot takes it);
   * null when a client took it or the pool is closing, else Neo4j's HELLO answer or why there is none.
   */
  async #openSpare(
    spec: UpstreamSpec,
  ): Promise<{ readonly upstream: U; readonly reply: ControlReply | UpstreamClosedError } | null> {
    const upstream = this.#create(spec);
    this.#warming.add(upstream);
    const reply = await this.#sayHello(upstream, spec);
    // Gone from the set: a client took its slot, which says nothing about Neo4j.
    if (!this.#warming.delete(upstream) || this.#closing) {
      this.#destroy(upstream, 'shutdown');
      return null;
    }
    return { upstream, reply };
  }

  /** Keeps a spare upstream idle when its HELLO succeeded and nothing else touched it; false otherwise. */
  #keepIfReady(upstream: U, reply: ControlReply | UpstreamClosedError): boolean {
    if (reply instanceof UpstreamClosedError) return false;
    if (reply.signature !== BoltSignature.SUCCESS || upstream.state !== 'saying_hello') return false;
    this.#keep(upstream);
    return true;
  }

  async #prewarm(spec: UpstreamSpec): Promise<void> {
    const opened = await this.#openSpare(spec);
    if (opened === null) return;
    const { upstream, reply } = opened;
    if (this.#keepIfReady(upstream, reply)) {
      this.#prewarmFailed(null);
      return;
    }
    this.#destroy(upstream, 'server_closed');
    this.#prewarmFailed(
      reply instanceof UpstreamClosedError ? reply : new Error('Neo4j refused a HELLO it had accepted before'),
    );
  }

  /** Logged when pre-warming starts failing and when it works again, not at every attempt. */
  #prewarmFailed(error: Error | null): void {
    if ((error !== null) === this.#prewarmFailing) return;
    this.#prewarmFailing = error !== null;
    if (error === null) this.#logger?.info('pre-warming pooled Neo4j connections (proxy.pooling.minIdle) works again');
    else {
      this.#logger?.warn(
        { err: error },
        'pre-warming pooled Neo4j connections (proxy.pooling.minIdle) failed; retrying one at a time every second',
      );
    }
  }
}
