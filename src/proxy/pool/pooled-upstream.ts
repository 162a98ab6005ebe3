/**
 * One pooled connection to Neo4j and its life as an explicit state with one transition function, as
 * pgbouncer keeps its server sockets:
 *
 *   connecting → greeting → ready ⇄ lent
 *                     ↓       ↑ ↓    ↓
 *                     └─ busy (HELLO, LOGOFF+LOGON, RESET owned by the pool) ─→ ready | lent
 *   any → closed
 *
 * While `lent`, every byte goes to the one borrower; otherwise the pool reads the replies itself.
 */
import type net from 'node:net';
import {
  BoltDechunker,
  type BoltMessageFrame,
  BoltSignature,
  type BoltVersion,
  chunkMessage,
  decodeBoltMessage,
  encodePackStream,
  type PackStreamMap,
  PackStreamStruct,
} from '../bolt/index.ts';
import { connectUpstream, type UpstreamTarget } from '../upstream.ts';
import type { Login } from './connection-key.ts';
import { MANIFEST_ONLY_OFFER, varint } from './server-versions.ts';

export type UpstreamState = 'connecting' | 'greeting' | 'ready' | 'busy' | 'lent' | 'closed';

const TRANSITIONS: Readonly<Record<UpstreamState, readonly UpstreamState[]>> = {
  connecting: ['greeting', 'closed'],
  greeting: ['ready', 'busy', 'lent', 'closed'],
  ready: ['busy', 'lent', 'closed'],
  busy: ['ready', 'lent', 'closed'],
  lent: ['busy', 'ready', 'closed'],
  closed: [],
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

const SUMMARIES: ReadonlySet<number> = new Set([BoltSignature.SUCCESS, BoltSignature.FAILURE, BoltSignature.IGNORED]);

export interface UpstreamOpenOptions {
  readonly id: number;
  readonly target: UpstreamTarget;
  readonly key: string;
  readonly version: BoltVersion;
  readonly capabilities: bigint;
  readonly connectTimeoutMs: number;
  readonly maxMessageBytes: number;
  readonly lifetimeMs: number;
  /** TCP (and TLS) is up, after this many seconds. */
  readonly onConnected: (seconds: number) => void;
  /** Every state change, for the pool's gauges and invariants. */
  readonly onState: (upstream: PooledUpstream, from: UpstreamState, to: UpstreamState) => void;
}

export class PooledUpstream {
  readonly id: number;
  readonly key: string;
  readonly version: BoltVersion;
  readonly createdAtMs = performance.now();
  readonly expiresAtMs: number;
  /** Last time it went back to ready: idle time and liveness checks count from here. */
  readyAtMs = performance.now();
  /** Times it was lent to a client. */
  lends = 0;
  /** The login it carries and when Neo4j last accepted it; null before LOGON or once unknown. */
  login: { readonly login: Login; readonly verifiedAtMs: number; readonly reply: Buffer } | null = null;
  /** Neo4j's HELLO SUCCESS payload on this connection. */
  helloReply: Buffer | null = null;
  serverAgent: string | null = null;
  readonly #socket: net.Socket;
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

  constructor(options: UpstreamOpenOptions) {
    this.id = options.id;
    this.key = options.key;
    this.version = options.version;
    this.expiresAtMs = this.createdAtMs + options.lifetimeMs;
    this.#onState = options.onState;
    this.#replies = new BoltDechunker({
      keepPayload: () => true,
      maxPayloadBytes: options.maxMessageBytes,
      onMessage: (frame) => this.#onReply(frame),
    });
    const connectStartedMs = performance.now();
    const socket = connectUpstream(options.target, () => {
      options.onConnected((performance.now() - connectStartedMs) / 1000);
      socket.setTimeout(0);
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 60_000);
    });
    socket.setTimeout(options.connectTimeoutMs, () => {
      if (this.#state === 'connecting')
        socket.destroy(new Error(`no connection within ${options.connectTimeoutMs} ms`));
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
  async greet(capabilities: bigint, hello: Buffer): Promise<ControlReply> {
    const handshake = await this.#manifestHandshake();
    if (handshake !== null) throw handshake;
    this.#transition('greeting');
    const choice = Buffer.from([0, 0, this.version.minor, this.version.major, ...varint(capabilities)]);
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
    this.#transition('busy');
    return this.#request(messages, summaries);
  }

  /** Hands every byte Neo4j sends to `borrower` until returned. Never to two at once. */
  lend(borrower: UpstreamBorrower): void {
    if (this.#borrower !== null) throw new Error(`upstream ${this.id} is already lent`);
    this.#transition('lent');
    this.#borrower = borrower;
  }

  /** The borrower is done; the pool reads from here on. The state stays lent until the pool moves it. */
  takeBack(): void {
    this.#borrower = null;
  }

  write(data: Buffer): boolean {
    return this.#socket.write(data);
  }

  markReady(): void {
    this.readyAtMs = performance.now();
    this.#transition('ready');
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
    if (this.#state === 'closed') return Promise.resolve(this.#closedError());
    return new Promise((resolve) => {
      this.#handshake = { answer: Buffer.alloc(0), done: resolve };
      this.#socket.write(MANIFEST_ONLY_OFFER);
    });
  }

  /** Set while the manifest answer is awaited: bytes until then are handshake, not messages. */
  #handshake: { answer: Buffer; done: (error: Error | null) => void } | null = null;

  #onHandshakeData(data: Buffer): void {
    const handshake = this.#handshake;
    if (handshake === null) return;
    handshake.answer = Buffer.concat([handshake.answer, data]);
    const parsed = parseManifestAnswer(handshake.answer);
    if (parsed === 'incomplete') return;
    this.#handshake = null;
    if (parsed === 'refused') {
      handshake.done(new UpstreamClosedError('Neo4j did not answer the manifest handshake'));
      this.destroy();
      return;
    }
    handshake.done(null);
    if (parsed.leftover.length > 0) this.#replies.feed(parsed.leftover);
  }

  #request(messages: Buffer, summaries: number): Promise<ControlReply[]> {
    if (this.#state === 'closed') return Promise.reject(this.#closedError());
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
    if (SUMMARIES.has(frame.signature) && --waiting.summaries === 0) {
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
    if (this.#state !== 'closed') this.#transition('closed');
    borrower?.onClosed(this.#closeError);
  }
}

/** The manifest answer: marker, ranges, capabilities; what follows it (nothing, normally). */
function parseManifestAnswer(bytes: Buffer): 'incomplete' | 'refused' | { leftover: Buffer } {
  if (bytes.length < 4) return 'incomplete';
  if (bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== 1 || bytes[3] !== 0xff) return 'refused';
  let position = 4;
  const count = readVarint(bytes, position);
  if (count === null) return 'incomplete';
  position = count.end + 4 * Number(count.value);
  if (bytes.length < position) return 'incomplete';
  const capabilities = readVarint(bytes, position);
  if (capabilities === null) return 'incomplete';
  return { leftover: bytes.subarray(capabilities.end) };
}

function readVarint(bytes: Buffer, start: number): { value: bigint; end: number } | null {
  let value = 0n;
  let shift = 0n;
  for (let position = start; position < bytes.length && position < start + 10; position++) {
    const byte = bytes[position] ?? 0;
    value |= BigInt(byte & 0x7f) << shift;
    shift += 7n;
    if ((byte & 0x80) === 0) return { value, end: position + 1 };
  }
  return null;
}

/** A request with no fields beyond an optional metadata map, chunked. */
export function request(signature: number, metadata?: PackStreamMap): Buffer {
  return chunkMessage(encodePackStream(new PackStreamStruct(signature, metadata === undefined ? [] : [metadata])));
}
