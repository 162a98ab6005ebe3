/**
 * Fakes for the pool's unit tests, standing in for what the pool is given (PoolDependencies): a clock
 * the test moves by hand, a random source that plays back given values, and a Neo4j whose upstreams
 * answer HELLO, LOGOFF, LOGON and RESET at once, or never (frozen, or one upstream silenced, as a
 * firewall dropping it). The pool under test is the real UpstreamPool; only its surroundings are fake.
 */
import assert from 'node:assert/strict';
import {
  BoltDechunker,
  BoltSignature,
  messageMetadata,
  messagePayload,
  type PackStreamMap,
  requestMessage,
} from '../../../src/proxy/bolt/index.ts';
import { type Login, loginOf } from '../../../src/proxy/pool/connection-key.ts';
import {
  type CheckoutOptions,
  type CheckoutResult,
  type HoldOutcome,
  type HoldReason,
  type Lent,
  type LoginOutcome,
  type PoolClock,
  type PoolingMode,
  type PoolObserver,
  type PoolSettings,
  type Refused,
  type UpstreamCloseReason,
  UpstreamPool,
  type UpstreamSpec,
} from '../../../src/proxy/pool/pool.ts';
import {
  type ControlReply,
  type PoolableUpstream,
  UpstreamClosedError,
  type UpstreamLogin,
  type UpstreamOpenOptions,
  type UpstreamState,
} from '../../../src/proxy/pool/pooled-upstream.ts';

/** Lets every promise continuation and setImmediate callback queued so far run. */
export async function settle(): Promise<void> {
  for (let round = 0; round < 5; round++) await new Promise((resolve) => setImmediate(resolve));
}

interface Timer {
  readonly id: number;
  at: number;
  readonly everyMs: number | null;
  readonly callback: () => void;
}

/** Time moves only in advance(); timers due fire in time order, each after the last one's effects settled. */
export class FakeClock implements PoolClock {
  #nowMs = 0;
  #nextId = 1;
  readonly #timers = new Map<number, Timer>();

  readonly now = (): number => this.#nowMs;

  after(ms: number, callback: () => void): () => void {
    return this.#add(ms, null, callback);
  }

  every(ms: number, callback: () => void): () => void {
    return this.#add(ms, ms, callback);
  }

  /** Timers pending, the sweep's included. */
  get pending(): number {
    return this.#timers.size;
  }

  async advance(ms: number): Promise<void> {
    const until = this.#nowMs + ms;
    await settle();
    for (;;) {
      let next: Timer | null = null;
      for (const timer of this.#timers.values()) {
        if (timer.at <= until && (next === null || timer.at < next.at || (timer.at === next.at && timer.id < next.id)))
          next = timer;
      }
      if (next === null) break;
      this.#nowMs = next.at;
      if (next.everyMs === null) this.#timers.delete(next.id);
      else next.at += next.everyMs;
      next.callback();
      await settle();
    }
    this.#nowMs = until;
    await settle();
  }

  #add(ms: number, everyMs: number | null, callback: () => void): () => void {
    const id = this.#nextId++;
    this.#timers.set(id, { id, at: this.#nowMs + Math.max(0, ms), everyMs, callback });
    return () => this.#timers.delete(id);
  }
}

/** Plays back `values` in order, then the last one again. */
export function playedBack(values: readonly number[]): () => number {
  let index = 0;
  return () => values[Math.min(index++, values.length - 1)] ?? 0;
}

function reply(signature: number, metadata: PackStreamMap = new Map()): ControlReply {
  return { signature, payload: messagePayload(signature, metadata), metadata };
}

function databaseUnavailable(): ControlReply {
  return reply(BoltSignature.FAILURE, new Map([['code', 'Neo.TransientError.General.DatabaseUnavailable']]));
}

/** The Neo4j the fake upstreams talk to: who may log in, and whether it answers at all. */
export class FakeNeo4j {
  /** False: accepts connections and reads requests, and never answers (frozen, or a black-holing balancer). */
  answering = true;
  /** False: TCP is accepted but not even connected from the pool's side (no onConnected). */
  connecting = true;
  /** True: stopped, every new connection is refused (its open fails at once). */
  refusing = false;
  /** Starting: HELLO or LOGON is answered DatabaseUnavailable. */
  unavailableOn: 'hello' | 'logon' | null = null;
  agent = 'Neo4j/5.26.0';
  readonly passwords = new Map<string, string>([
    ['alice', 'right'],
    ['bob', 'right'],
  ]);
  readonly opened: FakeUpstream[] = [];
  /** LOGON requests answered, accepted or not: logins Neo4j verified. */
  logons = 0;
  resets = 0;

  get live(): FakeUpstream[] {
    return this.opened.filter((upstream) => upstream.state !== 'gone');
  }

  readonly open = (options: UpstreamOpenOptions): FakeUpstream => {
    const upstream = new FakeUpstream(this, options);
    this.opened.push(upstream);
    return upstream;
  };

  /** A LOGON's answer: SUCCESS for a known user with the right password. */
  answerLogon(fields: PackStreamMap): ControlReply {
    this.logons++;
    const principal = fields.get('principal');
    const credentials = fields.get('credentials');
    if (this.unavailableOn === 'logon') return databaseUnavailable();
    const right = typeof principal === 'string' && this.passwords.get(principal) === credentials;
    return right
      ? reply(BoltSignature.SUCCESS)
      : reply(BoltSignature.FAILURE, new Map([['code', 'Neo.ClientError.Security.Unauthorized']]));
  }
}

export class FakeUpstream implements PoolableUpstream {
  readonly id: number;
  readonly key: string;
  readonly version: UpstreamOpenOptions['version'];
  readonly createdAtMs: number;
  readonly expiresAtMs: number;
  readyAtMs: number;
  lends = 0;
  login: UpstreamLogin | null = null;
  helloReply: Buffer | null = null;
  serverAgent: string | null = null;
  /** Requests the pool sent on it, by signature. */
  readonly requests: number[] = [];
  /** Answers nothing from now on (a firewall dropped it), whatever the server does. */
  silenced = false;
  #state: UpstreamState = 'connecting';
  readonly #server: FakeNeo4j;
  readonly #options: UpstreamOpenOptions;
  #pending: { readonly fail: (error: Error) => void } | null = null;

  constructor(server: FakeNeo4j, options: UpstreamOpenOptions) {
    this.#server = server;
    this.#options = options;
    this.id = options.id;
    this.key = options.key;
    this.version = options.version;
    this.createdAtMs = options.now();
    this.readyAtMs = this.createdAtMs;
    this.expiresAtMs = this.createdAtMs + options.lifetimeMs;
    if (server.connecting && !server.refusing) queueMicrotask(() => this.#state !== 'gone' && options.onConnected(0));
  }

  get state(): UpstreamState {
    return this.#state;
  }

  get answering(): boolean {
    return this.#server.answering && !this.silenced;
  }

  handshakeAndHello(_capabilities: bigint, hello: Buffer): Promise<ControlReply> {
    if (!this.#server.connecting) return this.#never();
    if (this.#server.refusing) {
      this.#close(new UpstreamClosedError('connect ECONNREFUSED'));
      return Promise.reject(new UpstreamClosedError('connect ECONNREFUSED'));
    }
    return this.#answer(() => {
      this.#to('saying_hello');
      if (this.#server.unavailableOn === 'hello') return databaseUnavailable();
      this.requests.push(...signatures(hello));
      const answer = reply(BoltSignature.SUCCESS, new Map([['server', this.#server.agent]]));
      this.helloReply = answer.payload;
      this.serverAgent = this.#server.agent;
      return answer;
    });
  }

  control(messages: Buffer, summaries: number): Promise<ControlReply[]> {
    this.#to('exchanging');
    const sent = frames(messages);
    this.requests.push(...sent.map((frame) => frame.signature));
    return this.#answer(() => {
      const answers = sent.map((frame) => {
        if (frame.signature === BoltSignature.LOGON) return this.#server.answerLogon(frame.fields);
        if (frame.signature === BoltSignature.RESET) this.#server.resets++;
        return reply(BoltSignature.SUCCESS);
      });
      if (answers.length !== summaries) throw new Error(`asked for ${summaries} summaries, sent ${answers.length}`);
      return answers;
    });
  }

  /** TCP (and TLS) came up late: what the real upstream reports then. */
  connectNow(): void {
    this.#options.onConnected(0);
  }

  /** What connection.ts does with an upstream it was lent. */
  lend(): void {
    this.#to('borrowed');
  }

  takeBack(): void {}

  markReady(): void {
    this.readyAtMs = this.#options.now();
    this.#to('idle');
  }

  destroy(): void {
    this.#close(new UpstreamClosedError('destroyed'));
  }

  /** Neo4j closed it (restarted, say). */
  closeFromServer(): void {
    this.#close(new UpstreamClosedError('Neo4j closed the connection'));
  }

  #close(error: Error): void {
    if (this.#state === 'gone') return;
    this.#to('gone');
    const pending = this.#pending;
    this.#pending = null;
    pending?.fail(error);
  }

  #answer<T>(produce: () => T): Promise<T> {
    if (this.#state === 'gone') return Promise.reject(new UpstreamClosedError('closed'));
    if (!this.answering) return this.#never();
    return new Promise((resolve, reject) => {
      this.#pending = { fail: reject };
      queueMicrotask(() => {
        if (this.#pending === null || this.#state === 'gone') return;
        this.#pending = null;
        try {
          resolve(produce());
        } catch (error) {
          reject(error);
        }
      });
    });
  }

  /** Read and never answered: settles only when the upstream is destroyed. */
  #never<T>(): Promise<T> {
    return new Promise((_resolve, reject) => {
      this.#pending = { fail: reject };
    });
  }

  #to(state: UpstreamState): void {
    const from = this.#state;
    if (from === state) return;
    this.#state = state;
    this.#options.onState(this, from, state);
  }
}

function frames(messages: Buffer): { signature: number; fields: PackStreamMap }[] {
  const found: { signature: number; fields: PackStreamMap }[] = [];
  const dechunker = new BoltDechunker({
    keepPayload: () => true,
    onMessage: (frame) => {
      found.push({ signature: frame.signature, fields: messageMetadata(frame.payload) ?? new Map() });
    },
  });
  dechunker.feed(messages);
  return found;
}

function signatures(messages: Buffer): number[] {
  return frames(messages).map((frame) => frame.signature);
}

/** What the pool told its observer, as the proxy's metrics would count it. */
export class RecordingObserver implements PoolObserver {
  readonly checkouts: CheckoutResult[] = [];
  readonly logins: LoginOutcome[] = [];
  readonly closes: { readonly reason: UpstreamCloseReason; readonly atMs: number }[] = [];
  readonly holds: { readonly reason: HoldReason; readonly outcome: HoldOutcome; readonly seconds: number }[] = [];
  pausesExpired = 0;
  connected = 0;
  constructor(readonly clock: FakeClock) {}
  upstreamConnected(): void {
    this.connected++;
  }
  checkout(result: CheckoutResult): void {
    this.checkouts.push(result);
  }
  login(outcome: LoginOutcome): void {
    this.logins.push(outcome);
  }
  upstreamClosed(reason: UpstreamCloseReason): void {
    this.closes.push({ reason, atMs: this.clock.now() });
  }
  holdEnded(reason: HoldReason, outcome: HoldOutcome, seconds: number): void {
    this.holds.push({ reason, outcome, seconds });
  }
  pauseExpired(): void {
    this.pausesExpired++;
  }
  closed(reason: UpstreamCloseReason): number {
    return this.closes.filter((close) => close.reason === reason).length;
  }
}

export const TEST_SETTINGS: PoolSettings = {
  maxUpstreams: 4,
  maxUpstreamsPerKey: 4,
  acquireTimeoutMs: 5000,
  idleTimeoutMs: 600_000,
  minIdle: 0,
  maxLifetimeMs: 3_600_000,
  livenessCheckAfterIdleMs: 600_000,
  authCacheSeconds: 0,
  connectTimeoutMs: 1000,
  maxMessageBytes: 1 << 20,
  // Off unless a test turns it on: the deadline tests see a failed open fail the checkout at once.
  holdTimeoutMs: 0,
  maxPauseMs: 120_000,
};

export interface FakePool {
  readonly pool: UpstreamPool<FakeUpstream>;
  readonly clock: FakeClock;
  readonly server: FakeNeo4j;
  readonly observer: RecordingObserver;
}

export function fakePool(
  settings: Partial<PoolSettings> = {},
  options: { mode?: Exclude<PoolingMode, 'off'>; random?: () => number } = {},
): FakePool {
  const clock = new FakeClock();
  const server = new FakeNeo4j();
  const observer = new RecordingObserver(clock);
  const pool = new UpstreamPool<FakeUpstream>(
    { host: 'fake', port: 0, tls: { mode: 'off' }, uri: 'bolt://fake' },
    { ...TEST_SETTINGS, ...settings },
    observer,
    options.mode ?? 'session',
    null,
    {
      openUpstream: server.open,
      learnServerVersions: () => Promise.resolve(null),
      clock,
      random: options.random ?? (() => 0),
    },
  );
  return { pool, clock, server, observer };
}

const HELLO = requestMessage(BoltSignature.HELLO, new Map([['user_agent', 'test/1.0']]));

/** A Bolt 5.4 client's settings under `key`. */
export function specOf(key = 'k1'): UpstreamSpec {
  return { key, version: { major: 5, minor: 4 }, capabilities: 0n, hello: HELLO };
}

/** A Bolt 5.1+ client's login: the pool's Login and the LOGON to send for it. */
export function logonOf(user: string, password = 'right'): { readonly login: Login; readonly logon: Buffer } {
  const fields: PackStreamMap = new Map([
    ['scheme', 'basic'],
    ['principal', user],
    ['credentials', password],
  ]);
  return { login: loginOf(fields), logon: requestMessage(BoltSignature.LOGON, fields) };
}

type Outcome = Lent<FakeUpstream> | Refused;

/** A client's LOGON through the pool, as the proxy's login sends it; not awaited, so it may wait (or be held). */
export function logon(
  { pool }: FakePool,
  key: string,
  user = 'alice',
  password = 'right',
  options: CheckoutOptions = {},
) {
  const { login, logon } = logonOf(user, password);
  const checkout = pool.checkoutForLogon(specOf(key), login, logon, null, options);
  const state: { outcome: Outcome | null; error: unknown } = { outcome: null, error: null };
  const done = checkout.then(
    (outcome) => {
      if (!('refused' in outcome)) outcome.upstream.lend();
      state.outcome = outcome;
      return outcome;
    },
    (error: unknown) => {
      state.error = error;
      return null;
    },
  );
  return {
    done,
    get pending() {
      return state.outcome === null && state.error === null;
    },
    get error() {
      return state.error;
    },
    /** The upstream lent, asserting there is one. */
    get upstream(): FakeUpstream {
      const outcome = state.outcome;
      assert.ok(outcome !== null && !('refused' in outcome), 'lent an upstream');
      return outcome.upstream;
    },
    get outcome() {
      return state.outcome;
    },
  };
}

export async function lentTo(fake: FakePool, key = 'k1', user = 'alice'): Promise<FakeUpstream> {
  const client = logon(fake, key, user);
  await client.done;
  return client.upstream;
}

export function release(fake: FakePool, upstream: FakeUpstream): Promise<void> {
  fake.pool.release(upstream, { pendingSummaries: 0 });
  return settle();
}
