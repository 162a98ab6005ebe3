/**
 * One pooled connection to Neo4j and its life as an explicit state with one transition function, as
 * pgbouncer keeps its server sockets:
 *
 *   connecting → saying_hello → idle ⇄ borrowed
 *                     ↓          ↑ ↓      ↓
 *                     └──── exchanging ───┘   (LOGOFF+LOGON, RESET: the pool's own round trips)
 *   any → gone
 *
 *   connecting    TCP, TLS and the manifest handshake
 *   saying_hello  the client's HELLO sent; until the pool first keeps, lends or logs it in
 *   idle          in the pool, nobody reading from it
 *   exchanging    the pool reads the replies to its own requests
 *   borrowed      one client connection gets every byte (the connection calls its own side of this "lent")
 *   gone          socket closed; never leaves this state
 *
 * Nothing here waits on a clock: the pool puts every step under its deadline and destroys an upstream
 * that misses it (pool.ts), so one mechanism, with the pool's injected clock, times them all.
 */
import type net from 'node:net';
import {
  BoltDechunker,
  BoltHandshake,
  type BoltMessageFrame,
  BoltSignature,
  type BoltVersion,
  decodeBoltMessage,
  encodeVarint,
  isSummary,
  type PackStreamMap,
} from '../bolt/index.ts';
import { connectUpstream, type UpstreamTarget } from '../upstream.ts';
import type { Login } from './connection-key.ts';
import { MANIFEST_ONLY_OFFER } from './server-versions.ts';

export type UpstreamState = 'connecting' | 'saying_hello' | 'idle' | 'exchanging' | 'borrowed' | 'gone';

const TRANSITIONS: Readonly<Record<UpstreamState, readonly UpstreamState[]>> = {
  connecting: ['saying_hello', 'gone'],
  saying_hello: ['idle', 'exchanging', 'borrowed', 'gone'],
  idle: ['exchanging', 'borrowed', 'gone'],
  exchanging: ['idle', 'borrowed', 'gone'],
  borrowed: ['exchanging', 'idle', 'gone'],
  gone: [],
};

/** A summary or record the pool read for itself. */
export interface ControlReply {
  readonly signature: number;
  /** The whole message payload (struct header included), to relay or record. */
  readonly payload: Buffer;
  readonly metadata: PackStreamMap | null;
}

/** The client connection an upstream is lent to. */
export interface UpstreamBorrower {
  readonly onData: (data: Buffer) => void;
  /** Neo4j ended or the socket failed while lent. */
  readonly onClosed: (error: Error | null) => void;
}

export class UpstreamClosedError extends Error {}

/** The login an upstream carries and when Neo4j last accepted it. */
export interface UpstreamLogin {
  readonly login: Login;
  readonly verifiedAtMs: number;
  readonly reply: Buffer;
}

/**
 * What the pool needs of an upstream: PooledUpstream, or a fake in the pool's unit tests. The pool
 * sets `lends`, `login` and moves the state through handshakeAndHello, control, markReady and destroy.
 */
export interface PoolableUpstream {
  readonly id: number;
  readonly key: string;
  readonly version: BoltVersion;
  readonly createdAtMs: number;
  readonly expiresAtMs: number;
  /** Last time it went back to idle: idle time and liveness checks count from here. */
  readonly readyAtMs: number;
  /** Times it was lent to a client. */
  lends: number;
  /** The login it carries; null before LOGON or once unknown. */
  login: UpstreamLogin | null;
  /** Neo4j's HELLO SUCCESS payload on this connection. */
  readonly helloReply: Buffer | null;
  readonly serverAgent: string | null;
  readonly state: UpstreamState;
  handshakeAndHello(capabilities: bigint, hello: Buffer): Promise<ControlReply>;
  control(messages: Buffer, summaries: number): Promise<ControlReply[]>;
  takeBack(): void;
  markReady(): void;
  destroy(error?: Error): void;
}

/** What the pool gives an upstream it opens (the target and the socket are the factory's business). */
export interface UpstreamOpenOptions {
  readonly id: number;
  readonly key: string;
  readonly version: BoltVersion;
  readonly capabilities: bigint;
  readonly maxMessageBytes: number;
  readonly lifetimeMs: number;
  /** The pool's clock, in ms. */
  readonly now: () => number;
  /** TCP (and TLS) is up, after this many seconds. */
  readonly onConnected: (seconds: number) => void;
  /** Every state change, for the pool's gauges and deadlines. */
  readonly onState: (upstream: PoolableUpstream, from: UpstreamState, to: UpstreamState) => void;
}

export class PooledUpstream implements PoolableUpstream {
  readonly id: number;
  readonly key: string;
  readonly version: BoltVersion;
  readonly createdAtMs: number;
  readonly expiresAtMs: number;
  readyAtMs: number;
  lends = 0;
  login: UpstreamLogin | null = null;
  helloReply: Buffer | null = null;
  serverAgent: string | null = null;
  readonly #socket: net.Socket;
  readonly #now: () => number;
  readonly #onState: UpstreamOpenOptions['onState'];
  #state: UpstreamState = 'connecting';
  #borrower: UpstreamBorrower | null = null;
  readonly #replies: BoltDechunker;
  #waiting: {
    summaries: number;
    received: ControlReply[];
    resolve: (replies: ControlReply[]) => void;
    reject: (error: Error) => void;
  } | null = null;
  #closeError: Error | null = null;

  constructor(target: UpstreamTarget, options: UpstreamOpenOptions) {
    this.id = options.id;
    this.key = options.key;
    this.version = options.version;
    this.#now = options.now;
    this.createdAtMs = this.#now();
    this.readyAtMs = this.createdAtMs;
    this.expiresAtMs = this.createdAtMs + options.lifetimeMs;
    this.#onState = options.onState;
    this.#replies = new BoltDechunker({
      keepPayload: () => true,
      maxPayloadBytes: options.maxMessageBytes,
      onMessage: (frame) => this.#onReply(frame),
    });
    const socket = connectUpstream(target, () => {
      options.onConnected((this.#now() - this.createdAtMs) / 1000);
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 60_000);
    });
    socket.on('data', (data: Buffer) => this.#onData(data));
    socket.on('end', () => socket.end());
    socket.on('error', (error) => {
      this.#closeError ??= error;
    });
    socket.on('close', () => this.#onClose());
    this.#socket = socket;
  }

  get state(): UpstreamState {
    return this.#state;
  }

  /** Bytes written to Neo4j and not yet sent: the borrower's share of back-pressure. */
  get bufferedBytes(): number {
    return this.#socket.writableLength;
  }

  /** Stops reading from Neo4j until resume(): the borrower's client is not taking what it was sent. */
  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  /** After write() returned false: `listener` runs once Neo4j has taken what was buffered. */
  onceDrained(listener: () => void): void {
    this.#socket.once('drain', listener);
  }

  /**
   * Handshake at exactly the client's version through the manifest, then the client's HELLO (sent as it
   * came, so Neo4j sees the client's agent); resolves with Neo4j's reply to it.
   */
  async handshakeAndHello(capabilities: bigint, hello: Buffer): Promise<ControlReply> {
    const handshake = await this.#manifestHandshake();
    if (handshake !== null) throw handshake;
    this.#transition('saying_hello');
    const choice = Buffer.concat([
      Buffer.from([0, 0, this.version.minor, this.version.major]),
      encodeVarint(capabilities),
    ]);
    const [reply] = await this.#request(Buffer.concat([choice, hello]), 1);
    if (reply === undefined) throw new UpstreamClosedError('no reply to HELLO');
    if (reply.signature === BoltSignature.SUCCESS) {
      this.helloReply = reply.payload;
      const server = reply.metadata?.get('server');
      this.serverAgent = typeof server === 'string' ? server : null;
    }
    return reply;
  }

  /** The pool's own requests (LOGOFF + LOGON, RESET): resolves with every reply up to the `summaries`th summary. */
  async control(messages: Buffer, summaries: number): Promise<ControlReply[]> {
    this.#transition('exchanging');
    return this.#request(messages, summaries);
  }

  /** Hands every byte Neo4j sends to `borrower` until returned. Never to two at once. */
  lend(borrower: UpstreamBorrower): void {
    if (this.#borrower !== null) throw new Error(`upstream ${this.id} is already lent`);
    this.#transition('borrowed');
    this.#borrower = borrower;
  }

  /** The borrower is done; the pool reads from here on. The state stays borrowed until the pool moves it. */
  takeBack(): void {
    this.#borrower = null;
  }

  write(data: Buffer): boolean {
    return this.#socket.write(data);
  }

  markReady(): void {
    this.readyAtMs = this.#now();
    this.#transition('idle');
  }

  destroy(error?: Error): void {
    this.#closeError ??= error ?? null;
    this.#socket.destroy();
  }

  #transition(to: UpstreamState): void {
    const from = this.#state;
    if (from === to) return;
    if (!TRANSITIONS[from].includes(to)) throw new Error(`upstream ${this.id}: no transition ${from} → ${to}`);
    this.#state = to;
    this.#onState(this, from, to);
  }

  /** Resolves once the manifest answer is read (null), or with why there is none. */
  #manifestHandshake(): Promise<Error | null> {
    if (this.#state === 'gone') return Promise.resolve(this.#closedError());
    return new Promise((resolve) => {
      const codec = new BoltHandshake();
      codec.feedClient(MANIFEST_ONLY_OFFER);
      this.#handshake = { codec, done: resolve };
      this.#socket.write(MANIFEST_ONLY_OFFER);
    });
  }

  /** Set while the manifest answer is awaited: bytes until then are handshake, not messages. */
  #handshake: { codec: BoltHandshake; done: (error: Error | null) => void } | null = null;

  #onHandshakeData(data: Buffer): void {
    const handshake = this.#handshake;
    if (handshake === null) return;
    let progress: ReturnType<BoltHandshake['feedServer']>;
    try {
      progress = handshake.codec.feedServer(data);
    } catch (error) {
      // An answer the codec refuses (an over-long varint, HTTP): this is no Neo4j to pool.
      this.#handshake = null;
      const cause = error instanceof Error ? error : new Error('undecodable handshake answer');
      handshake.done(new UpstreamClosedError(`Neo4j's handshake answer is invalid: ${cause.message}`, { cause }));
      this.destroy(cause);
      return;
    }
    if (progress.state === 'incomplete') return;
    this.#handshake = null;
    if (progress.state === 'no-match' || !handshake.codec.usedManifest) {
      handshake.done(new UpstreamClosedError('Neo4j did not answer the manifest handshake'));
      this.destroy();
      return;
    }
    handshake.done(null);
    if (progress.leftover.length > 0) this.#replies.feed(progress.leftover);
  }

  #request(messages: Buffer, summaries: number): Promise<ControlReply[]> {
    if (this.#state === 'gone') return Promise.reject(this.#closedError());
    return new Promise((resolve, reject) => {
      this.#waiting = { summaries, received: [], resolve, reject };
      this.#socket.write(messages);
    });
  }

  #onData(data: Buffer): void {
    if (this.#handshake !== null) {
      this.#onHandshakeData(data);
      return;
    }
    if (this.#borrower !== null) {
      this.#borrower.onData(data);
      return;
    }
    try {
      this.#replies.feed(data);
    } catch (error) {
      this.destroy(error instanceof Error ? error : new Error('undecodable reply from Neo4j'));
    }
  }

  #onReply(frame: BoltMessageFrame): void {
    const waiting = this.#waiting;
    if (waiting === null || frame.payload === null) {
      // Nothing asked for: Neo4j is out of step with this connection, which cannot be trusted now.
      this.destroy(new Error(`unexpected message 0x${frame.signature.toString(16)} from Neo4j`));
      return;
    }
    const struct = decodeBoltMessage(frame.payload);
    const first = struct.fields[0];
    waiting.received.push({
      signature: frame.signature,
      payload: Buffer.from(frame.payload),
      metadata: first instanceof Map ? (first as PackStreamMap) : null,
    });
    if (isSummary(frame.signature) && --waiting.summaries === 0) {
      this.#waiting = null;
      waiting.resolve(waiting.received);
    }
  }

  #closedError(): UpstreamClosedError {
    return new UpstreamClosedError(
      this.#closeError ? `Neo4j connection closed: ${this.#closeError.message}` : 'Neo4j closed the connection',
      ...(this.#closeError ? [{ cause: this.#closeError }] : []),
    );
  }

  #onClose(): void {
    const error = this.#closedError();
    this.#handshake?.done(error);
    this.#handshake = null;
    const waiting = this.#waiting;
    this.#waiting = null;
    if (waiting !== null) {
      // Replies that did come (a FAILURE before Neo4j closed) are still the answer.
      if (waiting.received.length > 0) waiting.resolve(waiting.received);
      else waiting.reject(error);
    }
    const borrower = this.#borrower;
    this.#borrower = null;
    if (this.#state !== 'gone') this.#transition('gone');
    borrower?.onClosed(this.#closeError);
  }
}
