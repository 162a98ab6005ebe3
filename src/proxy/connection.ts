/**
 * One client connection and its upstream: opened for it (pooling off), or lent by the pool for the
 * client's life (session mode), in which case the proxy answers the handshake, HELLO and LOGON itself
 * (every login still verified by Neo4j, see pool/pool.ts) and returns the upstream when the client
 * leaves. Bytes go both ways unchanged (the same Buffers that are forwarded are fed to the codec, which
 * only reads them); the exceptions are a routing table, held until complete and replaced by a copy
 * pointing at the proxy, and, with pooling, the client's GOODBYE, which never reaches a pooled upstream.
 *
 * Each socket's life is one explicit state with one transition function (#setClient, #setUpstream), so
 * every lend, return and close reads in one place:
 *
 *   client:   handshaking → [greeting →] linked → ending → closed   (refusing: answered with a FAILURE)
 *   upstream: none → connecting → open → ending → closed             (pooling off)
 *             none → borrowing → lent → returned | closed            (pooled)
 */
import type net from 'node:net';
import { userAgentFamily } from '../metrics/user-agent.ts';
import {
  BoltCodecError,
  BoltConversationError,
  BoltConversationTracker,
  BoltDechunker,
  BoltFramingError,
  BoltHandshake,
  BoltHandshakeError,
  type BoltMessageFrame,
  BoltSignature,
  type ConversationEvent,
  chunkMessage,
  decodeBoltMessage,
  formatBoltVersion,
  PackStreamError,
  type PackStreamMap,
  rewriteRouteSuccess,
  rewriteRoutingProcedureRecord,
} from './bolt/index.ts';
import { ServerStreamForwarder } from './forwarder.ts';
import { type CloseReason, type ProblemReason, type ProxyMetrics, UNKNOWN_USER_AGENT } from './metrics.ts';
import { hasLogon, type Login, loginOf, settingsKey } from './pool/connection-key.ts';
import {
  type Lent,
  PoolTimeoutError,
  type Refused,
  type UpstreamCloseReason,
  type UpstreamPool,
  type UpstreamSpec,
} from './pool/pool.ts';
import type { PooledUpstream } from './pool/pooled-upstream.ts';
import { answerOffers, serverSpeaks } from './pool/server-versions.ts';
import { BoltRefusal, failureMessage, POOL_TIMEOUT_CODE, UPSTREAM_UNAVAILABLE_CODE } from './refusal.ts';
import { connectUpstream, formatAddress, type UpstreamTarget } from './upstream.ts';

export interface ConnectionSettings {
  readonly upstream: UpstreamTarget;
  readonly advertisedAddress: string;
  readonly handshakeTimeoutMs: number;
  readonly upstreamConnectTimeoutMs: number;
  readonly maxMessageBytes: number;
  /** Upstreams lent for the client's life (session mode); null: one opened per client (pooling off). */
  readonly pool?: UpstreamPool | null;
}

export interface ConnectionHooks {
  readonly metrics: ProxyMetrics;
  /** The proxy closed this connection because of `reason` (logged by the owner, rate-limited). */
  readonly onProblem: (connection: ProxiedConnection, reason: ProblemReason, error: Error) => void;
  readonly onVersion: (version: string) => void;
  readonly onClosed: (connection: ProxiedConnection) => void;
}

/** What can go wrong with a connection once accepted (the limit is checked before accepting). */
type ConnectionProblemReason = Exclude<ProblemReason, 'limit'>;

/** A problem the proxy found itself (not one the codec raised). */
class ConnectionProblem extends Error {
  constructor(
    readonly reason: ConnectionProblemReason,
    message: string,
  ) {
    super(message);
  }
}

export type ClientSocketState = 'handshaking' | 'greeting' | 'linked' | 'refusing' | 'ending' | 'closed';
export type UpstreamSocketState =
  | 'none'
  | 'connecting'
  | 'open'
  | 'borrowing'
  | 'lent'
  | 'ending'
  | 'returned'
  | 'closed';

const CLIENT_TRANSITIONS: Readonly<Record<ClientSocketState, readonly ClientSocketState[]>> = {
  handshaking: ['greeting', 'linked', 'refusing', 'ending', 'closed'],
  greeting: ['linked', 'refusing', 'ending', 'closed'],
  linked: ['refusing', 'ending', 'closed'],
  refusing: ['closed'],
  ending: ['closed'],
  closed: [],
};
const UPSTREAM_TRANSITIONS: Readonly<Record<UpstreamSocketState, readonly UpstreamSocketState[]>> = {
  none: ['connecting', 'borrowing', 'lent'],
  connecting: ['open', 'ending', 'closed'],
  open: ['ending', 'closed'],
  ending: ['closed'],
  borrowing: ['lent', 'none', 'closed'],
  // Transaction mode: back to none between units of work.
  lent: ['returned', 'none', 'closed'],
  returned: [],
  closed: [],
};
/** The upstream is gone or back in the pool: nothing more will come from it. */
const UPSTREAM_DONE: ReadonlySet<UpstreamSocketState> = new Set(['none', 'returned', 'closed']);

/** How long one side may take to finish after the other closed, before it is cut off. */
const LINGER_MS = 5000;
const EMPTY = Buffer.alloc(0);

function problemReason(error: unknown): ConnectionProblemReason {
  if (error instanceof ConnectionProblem) return error.reason;
  if (error instanceof BoltHandshakeError)
    return error.reason === 'http-response' ? 'upstream_not_bolt' : 'bad_handshake';
  if (error instanceof BoltFramingError) return error.reason === 'message-too-large' ? 'message_too_large' : 'framing';
  if (error instanceof PackStreamError) return 'undecodable_message';
  if (error instanceof BoltConversationError)
    return error.reason === 'unexpected-summary' ? 'out_of_step' : 'too_many_pending';
  return 'internal_error';
}

/**
 * A manifest client picks its version itself; one outside what the server announced is labelled
 * "other", so a hostile client cannot mint label values.
 */
function versionLabel(handshake: BoltHandshake): string {
  const version = handshake.negotiatedVersion;
  if (version === null || handshake.outcome !== 'agreed') return 'none';
  if (handshake.usedManifest) {
    const announced = (handshake.serverVersionRanges ?? []).some(
      (range) => range.major === version.major && version.minor >= range.minMinor && version.minor <= range.maxMinor,
    );
    if (!announced) return 'other';
  }
  return formatBoltVersion(version);
}

export class ProxiedConnection {
  readonly id: number;
  readonly remoteAddress: string;
  readonly #acceptedAtMs = performance.now();
  readonly #client: net.Socket;
  /** Opened on the client's first bytes: a port probe that connects and leaves costs Neo4j nothing. */
  #upstream: net.Socket | null = null;
  readonly #settings: ConnectionSettings;
  readonly #hooks: ConnectionHooks;
  readonly #handshake = new BoltHandshake();
  readonly #tracker: BoltConversationTracker;
  readonly #clientMessages: BoltDechunker;
  readonly #serverMessages: BoltDechunker;
  readonly #forwarder = new ServerStreamForwarder();
  readonly #closed: Promise<void>;
  #resolveClosed: () => void = () => {};

  /** Null with pooling off, and for a client passed through because Neo4j predates the manifest handshake. */
  #pool: UpstreamPool | null;
  #clientState: ClientSocketState = 'handshaking';
  #upstreamState: UpstreamSocketState = 'none';
  /** The pooled upstream while borrowing (held for the LOGON) or lent. */
  #lent: PooledUpstream | null = null;
  #version: string | null = null;
  /** The client's handshake bytes, kept until the server answers, so an unreachable upstream can be reported in Bolt. */
  #clientHandshakeBytes: Buffer[] | null = [];
  #refusal: BoltRefusal | null = null;
  #handshakeTimer: NodeJS.Timeout | null;
  #lingerTimer: NodeJS.Timeout | null = null;
  /** Time of the read being processed: one clock read per read, not per message. */
  #now = 0;
  #decodeFailuresSeen = 0;
  #userAgent: string | null = null;
  #queries = 0;
  #unflushedBytesFromClient = 0;
  #unflushedBytesFromServer = 0;
  #closeReason: CloseReason | null = null;
  #clientPaused = false;
  #upstreamPaused = false;
  #clientSentBytes = false;
  /** The client said GOODBYE: whichever side's close the proxy sees first, the client is the one leaving. */
  #clientSaidGoodbye = false;
  #draining = false;
  #finished = false;
  /** Pooled: client bytes after the handshake not sent upstream yet (stream offset of the first one). */
  #unsent: Buffer[] = [];
  #unsentStart = 0;
  /** Pooled: bytes before this stream offset were the login, answered here, never forwarded. */
  #forwardFrom = 0;
  /** Pooled: stream offset of the client's GOODBYE; nothing from there on goes upstream. */
  #goodbyeAt: number | null = null;
  /** Pooled: HELLO and LOGON wait their turn here while a checkout is under way. */
  #loginSteps: BoltMessageFrame[] = [];
  #loginBusy = false;
  #helloFields: PackStreamMap | null = null;
  /** Pooled: the client sent LOGOFF or LOGON itself, so the upstream's login is no longer the pool's. */
  #clientChangedLogin = false;
  /** Transaction mode: a FAILURE in this unit of work left the upstream FAILED, so it needs RESET before reuse. */
  #unitFailed = false;
  /**
   * Transaction mode: the client is FAILED as Neo4j sees it (a FAILURE with no RESET of the client's
   * after it). The upstream went back to the pool reset, so between units the proxy answers IGNORED
   * itself until the client's RESET, as Neo4j would.
   */
  #clientFailed = false;
  /** Transaction mode: requests the client sent in this unit, summaries Neo4j sent back, and the last RESET's place. */
  #unitRequests = 0;
  #unitSummaries = 0;
  #unitLastReset = -1;
  /** Transaction mode: the client's verified login, to log an upstream in for each unit of work. */
  #login: { readonly login: Login; readonly logon: Buffer | null } | null = null;

  constructor(id: number, client: net.Socket, settings: ConnectionSettings, hooks: ConnectionHooks) {
    this.id = id;
    this.#client = client;
    this.#settings = settings;
    this.#hooks = hooks;
    this.#pool = settings.pool ?? null;
    this.remoteAddress = formatAddress(client.remoteAddress ?? 'unknown', client.remotePort ?? 0);
    this.#closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    this.#tracker = new BoltConversationTracker({
      onEvent: (event) => this.#onEvent(event),
      ...hooks.metrics.conversation,
    });
    const keepClientPayload = this.#tracker.keepClientPayload;
    this.#clientMessages = new BoltDechunker({
      keepPayload:
        this.#pool === null
          ? keepClientPayload
          : (signature) => signature === BoltSignature.LOGON || keepClientPayload(signature),
      maxPayloadBytes: settings.maxMessageBytes,
      // Checked per message in #onClientMessage: only RUN may exceed the bound.
      oversizedPayload: 'drop',
      onMessage: (frame) => this.#onClientMessage(frame),
    });
    this.#serverMessages = new BoltDechunker({
      keepPayload: this.#tracker.keepServerPayload,
      maxPayloadBytes: settings.maxMessageBytes,
      oversizedPayload: 'error',
      onMessage: (frame) => this.#onServerMessage(frame),
    });
    hooks.metrics.connectionAccepted();

    this.#handshakeTimer = setTimeout(() => this.#onHandshakeTimeout(), settings.handshakeTimeoutMs);
    client.on('data', (data: Buffer) => this.#guarded(() => this.#onClientData(data)));
    client.on('end', () => this.#guarded(() => this.#onEnd('client')));
    client.on('error', (error) => this.#guarded(() => this.#onSocketError('client', error)));
    client.on('close', () => this.#guarded(() => this.#onSocketClose('client')));
  }

  /** The first client bytes go out at once: Node queues writes until the connection (and TLS) is up. */
  #openUpstream(): net.Socket {
    const settings = this.#settings;
    const connectStartedMs = performance.now();
    this.#setUpstream('connecting');
    const upstream = connectUpstream(settings.upstream, () => {
      if (this.#upstreamState === 'connecting') this.#setUpstream('open');
      upstream.setTimeout(0);
      upstream.setNoDelay(true);
      upstream.setKeepAlive(true, 60_000);
      this.#hooks.metrics.upstreamConnected((performance.now() - connectStartedMs) / 1000);
    });
    upstream.setTimeout(settings.upstreamConnectTimeoutMs, () => {
      if (this.#upstreamState === 'connecting') {
        upstream.destroy(new Error(`no connection within ${settings.upstreamConnectTimeoutMs} ms`));
      }
    });
    upstream.on('data', (data: Buffer) => this.#guarded(() => this.#onServerData(data)));
    upstream.on('end', () => this.#guarded(() => this.#onEnd('server')));
    upstream.on('error', (error) => this.#guarded(() => this.#onSocketError('server', error)));
    upstream.on('close', () => this.#guarded(() => this.#onSocketClose('server')));
    this.#upstream = upstream;
    return upstream;
  }

  /** Resolves once both sockets are closed and the connection's metrics are recorded. */
  get closed(): Promise<void> {
    return this.#closed;
  }

  get userAgent(): string {
    return this.#userAgent ?? UNKNOWN_USER_AGENT;
  }

  get boltVersion(): string | null {
    return this.#version;
  }

  get openQueries(): number {
    return this.#tracker.openQueryCount;
  }

  get clientState(): ClientSocketState {
    return this.#clientState;
  }

  get upstreamState(): UpstreamSocketState {
    return this.#upstreamState;
  }

  /** Bytes waiting in this connection: unsent socket buffers both ways plus a held message. */
  get bufferedBytes(): number {
    const upstream = this.#upstreamSocket();
    const upstreamBytes =
      upstream === null ? 0 : 'bufferedBytes' in upstream ? upstream.bufferedBytes : upstream.writableLength;
    return this.#client.writableLength + upstreamBytes + this.#forwarder.heldBytes;
  }

  /** Adds the bytes and messages counted since the last call to the metrics. */
  flushTraffic(): void {
    this.#hooks.metrics.traffic(
      this.#unflushedBytesFromClient,
      this.#unflushedBytesFromServer,
      this.#tracker.takeMessageCounts(),
    );
    this.#unflushedBytesFromClient = 0;
    this.#unflushedBytesFromServer = 0;
  }

  /** Shutdown, first step: close as soon as nothing is in flight (now, if nothing is). */
  drain(): void {
    this.#draining = true;
    this.#closeIfIdle();
  }

  /** Shutdown, after the grace period: close whatever is still going on. */
  terminate(): void {
    this.#closeReason ??= 'shutdown';
    this.#destroyBoth();
  }

  #setClient(next: ClientSocketState): void {
    const current = this.#clientState;
    if (current === next) return;
    if (!CLIENT_TRANSITIONS[current].includes(next)) {
      throw new ConnectionProblem('internal_error', `client socket: no transition ${current} → ${next}`);
    }
    this.#clientState = next;
  }

  #setUpstream(next: UpstreamSocketState): void {
    const current = this.#upstreamState;
    if (current === next) return;
    if (!UPSTREAM_TRANSITIONS[current].includes(next)) {
      throw new ConnectionProblem('internal_error', `upstream socket: no transition ${current} → ${next}`);
    }
    this.#upstreamState = next;
  }

  #upstreamSocket(): net.Socket | PooledUpstream | null {
    return this.#upstream ?? (this.#upstreamState === 'lent' ? this.#lent : null);
  }

  #onClientData(data: Buffer): void {
    this.#now = performance.now();
    this.#unflushedBytesFromClient += data.length;
    this.#clientSentBytes = true;
    if (this.#refusal !== null) {
      this.#refusal.feed(data);
      return;
    }
    if (this.#clientState === 'linked') {
      if (this.#upstream !== null) {
        // Requests go to Neo4j first and are read after, so the tracker's work is not on the query's path.
        // Bad input still closes the connection in this same turn, before Neo4j can answer it.
        this.#writeUpstream(data);
        this.#clientMessages.feed(data);
        return;
      }
      if (this.#upstreamState !== 'lent') {
        // Transaction mode between units: held until an upstream is lent, or answered here.
        this.#unsent.push(data);
        this.#clientMessages.feed(data);
        if (this.#goodbyeAt !== null) this.#afterGoodbye();
        return;
      }
      // Pooled: read first, so a GOODBYE can be held back from an upstream that outlives this client.
      const offset = this.#clientMessages.bytesFed;
      this.#clientMessages.feed(data);
      const goodbye = this.#goodbyeAt;
      if (goodbye === null) {
        this.#writeUpstream(data);
        return;
      }
      if (goodbye > offset) this.#writeUpstream(data.subarray(0, goodbye - offset));
      this.#afterGoodbye();
      return;
    }
    if (this.#clientState === 'greeting') {
      this.#unsent.push(data);
      this.#clientMessages.feed(data);
      return;
    }
    if (this.#clientState !== 'handshaking') return;
    this.#clientHandshakeBytes?.push(data);
    const progress = this.#handshake.feedClient(data);
    if (this.#pool !== null) {
      this.#pooledHandshake(progress.state === 'complete' ? progress.leftover : null);
      return;
    }
    if (progress.state === 'complete') this.#onClientHandshakeDone(progress.leftover);
    this.#afterHandshakeProgress();
    this.#writeUpstream(data);
  }

  #onServerData(data: Buffer): void {
    if (this.#refusal !== null) return;
    this.#now = performance.now();
    this.#unflushedBytesFromServer += data.length;
    this.#clientHandshakeBytes = null;
    let messages = data;
    if (!this.#handshake.serverComplete) {
      const progress = this.#handshake.feedServer(data);
      if (progress.state === 'incomplete') {
        this.#writeClient(data);
        return;
      }
      const answerLength = data.length - progress.leftover.length;
      if (answerLength > 0) this.#writeClient(answerLength === data.length ? data : data.subarray(0, answerLength));
      if (this.#clientState === 'handshaking') {
        // Bytes the client sent past its offers were held by the codec until the answer said what they are.
        const clientProgress = this.#handshake.feedClient(EMPTY);
        if (clientProgress.state === 'complete') this.#onClientHandshakeDone(clientProgress.leftover);
      }
      this.#afterHandshakeProgress();
      if (progress.state === 'no-match') {
        // The server closes next; anything it still sent is passed on, unobserved.
        if (progress.leftover.length > 0) this.#writeClient(progress.leftover);
        return;
      }
      if (progress.leftover.length === 0) return;
      messages = progress.leftover;
    }
    const offset = this.#serverMessages.bytesFed;
    this.#serverMessages.feed(messages);
    let safeEnd = offset + messages.length;
    const pendingStart = this.#serverMessages.pendingMessageStart;
    if (pendingStart !== null) {
      // Hold back only a message that may have to be replaced: signature not known yet, or one the tracker keeps.
      const signature = this.#serverMessages.pendingMessageSignature;
      if (signature === null || this.#tracker.keepServerPayload(signature)) safeEnd = pendingStart;
    }
    for (const piece of this.#forwarder.take(messages, offset, safeEnd)) this.#writeClient(piece);
    if (this.#pool?.mode === 'transaction') this.#endUnitIfDone();
    if (this.#draining) this.#closeIfIdle();
  }

  /**
   * Transaction mode: once the auto-commit query or explicit transaction is over and every reply is
   * through, the upstream goes back to the pool; the client keeps its connection and holds none.
   */
  #endUnitIfDone(): void {
    if (this.#upstreamState !== 'lent' || this.#clientState !== 'linked') return;
    const tracker = this.#tracker;
    if (tracker.pendingRequestCount > 0 || tracker.openQueryCount > 0 || tracker.inExplicitTransaction) return;
    if (this.#clientMessages.pendingMessageStart !== null || this.#serverMessages.pendingMessageStart !== null) return;
    if (this.#forwarder.heldBytes > 0 || this.#clientChangedLogin) return;
    this.#returnUpstream('none');
    this.#unitFailed = false;
    this.#unitRequests = 0;
    this.#unitSummaries = 0;
    this.#unitLastReset = -1;
    this.#unsent = [];
    this.#unsentStart = this.#clientMessages.bytesFed;
    this.#forwardFrom = this.#unsentStart;
  }

  /**
   * Transaction mode, no upstream held: RESET, TELEMETRY and LOGOFF are answered here (nothing is in
   * flight, so no reply can overtake another); anything else starts a unit of work on a lent upstream.
   */
  #onRequestBetweenUnits(frame: BoltMessageFrame): boolean {
    if (this.#upstreamState !== 'none') return false;
    if (this.#clientFailed && frame.signature !== BoltSignature.RESET && frame.signature !== BoltSignature.GOODBYE) {
      // FAILED as Neo4j sees it: ignored until the client's RESET, never run on a fresh upstream.
      this.#observeClientMessage(frame);
      this.#forwardFrom = frame.wireEnd;
      if (INVALID_WHEN_FAILED.has(frame.signature)) {
        // Neo4j 5.26 refuses these in FAILED as an invalid request and closes the connection.
        const failure = failureMessage(
          {
            code: INVALID_REQUEST_CODE,
            message: `message 0x${frame.signature.toString(16)} cannot be handled while the connection is FAILED; send RESET first`,
          },
          this.#handshake.negotiatedVersion,
        );
        this.#writeClient(failure);
        this.#closeReason ??= 'client_error';
        this.#endClient();
        return true;
      }
      this.#replyToClient(BoltSignature.IGNORED, IGNORED);
      return true;
    }
    switch (frame.signature) {
      case BoltSignature.GOODBYE:
        // Closed by #onClientData once the read is through.
        return true;
      case BoltSignature.RESET:
      case BoltSignature.TELEMETRY:
        if (frame.signature === BoltSignature.RESET) this.#clientFailed = false;
        this.#observeClientMessage(frame);
        this.#forwardFrom = frame.wireEnd;
        this.#replyToClient(BoltSignature.SUCCESS, EMPTY_SUCCESS);
        return true;
      case BoltSignature.LOGOFF:
        this.#observeClientMessage(frame);
        this.#forwardFrom = frame.wireEnd;
        this.#login = null;
        this.#replyToClient(BoltSignature.SUCCESS, EMPTY_SUCCESS);
        return true;
      case BoltSignature.LOGON:
        this.#forwardFrom = frame.wireEnd;
        this.#startUnit(frame);
        return true;
      default:
        this.#forwardFrom = frame.wireStart;
        this.#startUnit(null);
        this.#countUnitRequest(frame);
        this.#observeClientMessage(frame);
        return true;
    }
  }

  /** Borrows an upstream logged in as this client (or, for a LOGON, verifies the new login on it). */
  #startUnit(logonFrame: BoltMessageFrame | null): void {
    const pool = this.#pool as UpstreamPool;
    this.#setUpstream('borrowing');
    const spec = this.#spec();
    let checkout: Promise<Lent | Refused>;
    if (logonFrame !== null) {
      this.#observeClientMessage(logonFrame);
      const fields = messageMetadata(logonFrame.payload);
      if (fields === null)
        throw new ConnectionProblem('undecodable_message', 'the client sent a LOGON without metadata');
      const logon = chunkMessage(logonFrame.payload ?? EMPTY);
      this.#login = { login: loginOf(fields), logon };
      checkout = pool.checkoutForLogon(spec, this.#login.login, logon, null);
    } else if (this.#login === null) {
      throw new ConnectionProblem('framing', 'the client sent a request without being logged in');
    } else if (this.#login.logon === null) {
      checkout = pool.checkoutForHello(spec, this.#login.login, { verifiedLogin: true });
    } else {
      checkout = pool.checkoutForLogon(spec, this.#login.login, this.#login.logon, null, { verifiedLogin: true });
    }
    checkout.then(
      (outcome) => this.#guarded(() => this.#lendUnit(outcome, logonFrame !== null)),
      (error: unknown) => this.#guarded(() => this.#onCheckoutFailed(error)),
    );
  }

  #lendUnit(outcome: Lent | Refused, answerLogon: boolean): void {
    const pool = this.#pool as UpstreamPool;
    if ('refused' in outcome) {
      // Neo4j no longer takes this client's login (its password changed, say): it gets Neo4j's answer.
      this.#refuse(outcome);
      return;
    }
    const { upstream, reply } = outcome;
    if (this.#clientState !== 'linked' || this.#closeReason !== null) {
      pool.release(upstream, { pendingSummaries: 0 });
      if (this.#upstreamState === 'borrowing') this.#setUpstream('none');
      return;
    }
    this.#takeLent(upstream);
    if (answerLogon) this.#replyToClient(reply.signature, reply.payload);
    this.#sendUnsent();
    this.#endUnitIfDone();
  }

  /** The pool lent `upstream` to this connection: its bytes and its close now come here. */
  #takeLent(upstream: PooledUpstream): void {
    upstream.lend({
      onData: (data) => this.#guarded(() => this.#onServerData(data)),
      onClosed: (error) => this.#guarded(() => this.#onLentUpstreamClosed(error)),
    });
    this.#lent = upstream;
    this.#setUpstream('lent');
  }

  /** Client bytes held while no upstream was lent, from the first one not answered here. */
  #sendUnsent(): void {
    const unsent = Buffer.concat(this.#unsent);
    this.#unsent = [];
    const from = this.#forwardFrom - this.#unsentStart;
    const to = (this.#goodbyeAt ?? this.#unsentStart + unsent.length) - this.#unsentStart;
    if (to > from) this.#writeUpstream(unsent.subarray(from, to));
    this.#unsentStart += unsent.length;
    this.#forwardFrom = this.#unsentStart;
  }

  #onClientHandshakeDone(leftover: Buffer): void {
    if (this.#clientState === 'handshaking') this.#setClient('linked');
    if (leftover.length > 0) this.#clientMessages.feed(leftover);
  }

  #afterHandshakeProgress(): void {
    if (this.#version !== null || this.#handshake.outcome === 'pending') return;
    this.#clearHandshakeTimer();
    this.#version = versionLabel(this.#handshake);
    this.#hooks.metrics.boltVersion(this.#version);
    this.#hooks.onVersion(this.#version);
  }

  /**
   * Pooled: the proxy answers the handshake as the server would, from the versions it learnt from
   * Neo4j. A server without the manifest handshake cannot be answered for: that client passes through.
   */
  #pooledHandshake(leftover: Buffer | null): void {
    const pool = this.#pool;
    if (pool === null) return;
    if (this.#handshake.clientOffers === null || this.#handshake.serverComplete) {
      if (leftover !== null) this.#pooledHandshakeDone(leftover);
      return;
    }
    if (this.#clientHandshakeBytes === null || this.#clientHandshakeBytes.length > 1) return;
    // First read with the offers complete: ask for the server's versions once.
    pool.serverVersions().then(
      (versions) => this.#guarded(() => this.#answerHandshake(versions)),
      (error: unknown) =>
        this.#guarded(() => this.#onUpstreamUnavailable(error instanceof Error ? error : new Error('no answer'))),
    );
  }

  #answerHandshake(versions: Awaited<ReturnType<UpstreamPool['serverVersions']>>): void {
    if (this.#clientState !== 'handshaking' || this.#closeReason !== null) return;
    const offers = this.#handshake.clientOffers ?? [];
    if (versions === null) {
      // Neo4j before the manifest handshake: this client gets an upstream of its own, as with pooling off.
      const received = this.#clientHandshakeBytes ?? [];
      this.#pool = null;
      for (const data of received) this.#writeUpstream(data);
      if (this.#handshake.clientComplete) this.#onClientHandshakeDone(EMPTY);
      return;
    }
    const answer = answerOffers(offers, versions);
    this.#clientHandshakeBytes = null;
    this.#writeClient(answer.bytes);
    const progress = this.#handshake.feedServer(answer.bytes);
    if (progress.state === 'no-match' || answer.kind === 'none') {
      this.#afterHandshakeProgress();
      this.#closeReason = 'server_closed';
      this.#setClient('ending');
      this.#client.end();
      this.#startLinger();
      return;
    }
    const clientProgress = this.#handshake.feedClient(EMPTY);
    if (clientProgress.state === 'complete') this.#pooledHandshakeDone(clientProgress.leftover);
  }

  #pooledHandshakeDone(leftover: Buffer): void {
    const version = this.#handshake.negotiatedVersion;
    const ranges = this.#handshake.serverVersionRanges;
    if (
      version !== null &&
      this.#handshake.usedManifest &&
      ranges !== null &&
      !serverSpeaks({ ranges, capabilities: 0n }, version)
    ) {
      throw new ConnectionProblem(
        'bad_handshake',
        `client chose Bolt ${formatBoltVersion(version)}, which Neo4j did not offer`,
      );
    }
    this.#afterHandshakeProgress();
    this.#clientHandshakeBytes = null;
    this.#setClient('greeting');
    this.#unsentStart = this.#clientMessages.bytesFed;
    this.#forwardFrom = this.#unsentStart;
    if (leftover.length > 0) {
      this.#unsent.push(leftover);
      this.#clientMessages.feed(leftover);
    }
  }

  #onClientMessage(frame: BoltMessageFrame): void {
    if (frame.payloadDropped && frame.signature !== BoltSignature.RUN) {
      throw new ConnectionProblem(
        'message_too_large',
        `client message 0x${frame.signature.toString(16)} of ${frame.size} bytes exceeds proxy.maxMessageBytes`,
      );
    }
    if (frame.signature === BoltSignature.GOODBYE) {
      this.#clientSaidGoodbye = true;
      this.#goodbyeAt ??= frame.wireStart;
      if (this.#clientState === 'greeting' && this.#loginSteps.length === 0 && !this.#loginBusy) {
        // Gone before its login finished (a connectivity check, say): nothing is lent yet.
        this.#closeReason ??= 'client_closed';
        this.#destroyHeld();
        this.#endClient();
        this.#startLinger();
        return;
      }
    }
    if (
      this.#pool?.mode === 'transaction' &&
      this.#clientState === 'linked' &&
      this.#upstreamState === 'none' &&
      this.#onRequestBetweenUnits(frame)
    ) {
      return;
    }
    if (this.#clientState === 'greeting' && this.#isLoginStep(frame)) {
      this.#loginSteps.push({ ...frame, payload: frame.payload === null ? null : Buffer.from(frame.payload) });
      this.#forwardFrom = frame.wireEnd;
      this.#nextLoginStep();
      return;
    }
    if (
      this.#pool !== null &&
      this.#clientState === 'linked' &&
      (frame.signature === BoltSignature.LOGON || frame.signature === BoltSignature.LOGOFF)
    ) {
      this.#clientChangedLogin = true;
    }
    this.#countUnitRequest(frame);
    this.#observeClientMessage(frame);
  }

  /** Transaction mode: places requests in the unit, so a FAILURE can be told to come before or after a RESET. */
  #countUnitRequest(frame: BoltMessageFrame): void {
    if (this.#pool?.mode !== 'transaction' || this.#clientState !== 'linked') return;
    if (frame.signature === BoltSignature.GOODBYE) return;
    if (frame.signature === BoltSignature.RESET) {
      this.#unitLastReset = this.#unitRequests;
      this.#clientFailed = false;
    }
    this.#unitRequests++;
  }

  /** Transaction mode: a FAILURE to a request after the client's last RESET leaves the client FAILED. */
  #countUnitSummary(frame: BoltMessageFrame): void {
    if (this.#pool?.mode !== 'transaction' || !SUMMARIES.has(frame.signature)) return;
    const answers = this.#unitSummaries++;
    if (frame.signature === BoltSignature.FAILURE && answers > this.#unitLastReset) this.#clientFailed = true;
  }

  #observeClientMessage(frame: BoltMessageFrame): void {
    this.#tracker.clientMessage(frame, this.#now);
    this.#checkDecodeFailures('client');
    if (frame.signature === BoltSignature.HELLO && this.#userAgent === null) {
      this.#userAgent = userAgentFamily(this.#tracker.clientUserAgent);
      this.#hooks.metrics.connectionOpened(this.#userAgent);
    }
  }

  /** HELLO, and LOGON on 5.1+ until the client is linked: answered by the proxy with Neo4j's verdict. */
  #isLoginStep(frame: BoltMessageFrame): boolean {
    if (frame.signature === BoltSignature.HELLO) return this.#helloFields === null && this.#loginSteps.length === 0;
    return frame.signature === BoltSignature.LOGON && this.#upstreamState !== 'lent';
  }

  /** Login steps run one at a time, in order, even while a checkout awaits Neo4j. */
  #nextLoginStep(): void {
    if (this.#loginBusy) return;
    const frame = this.#loginSteps.shift();
    if (frame === undefined) return;
    this.#loginBusy = true;
    const step = frame.signature === BoltSignature.HELLO ? this.#onPooledHello(frame) : this.#onPooledLogon(frame);
    step
      .catch((error: unknown) => this.#guarded(() => this.#onCheckoutFailed(error)))
      .finally(() => {
        this.#loginBusy = false;
        if (this.#clientState === 'greeting') this.#guarded(() => this.#nextLoginStep());
      });
  }

  #spec(): UpstreamSpec {
    const hello = this.#helloFields ?? new Map();
    const version = this.#handshake.negotiatedVersion ?? { major: 0, minor: 0 };
    const capabilities = this.#handshake.clientCapabilities ?? 0n;
    let key = settingsKey(version, capabilities, hello);
    if (!hasLogon(version)) key += `/${loginOf(hello).digest.toString('base64')}`;
    return { key, version, capabilities, hello: chunkMessage(this.#helloPayload ?? EMPTY) };
  }

  #helloPayload: Buffer | null = null;

  async #onPooledHello(frame: BoltMessageFrame): Promise<void> {
    const pool = this.#pool as UpstreamPool;
    this.#observeClientMessage(frame);
    const fields = messageMetadata(frame.payload);
    if (fields === null) throw new ConnectionProblem('undecodable_message', 'the client sent a HELLO without metadata');
    this.#helloFields = fields;
    this.#helloPayload = frame.payload;
    const spec = this.#spec();
    const version = spec.version;
    if (!hasLogon(version)) {
      this.#setUpstream('borrowing');
      const login = loginOf(fields);
      this.#login = { login, logon: null };
      this.#link(await pool.checkoutForHello(spec, login));
      return;
    }
    const recorded = pool.recordedHello(spec.key);
    if (recorded !== null) {
      this.#replyToClient(BoltSignature.SUCCESS, recorded);
      return;
    }
    this.#setUpstream('borrowing');
    const { upstream, reply } = await pool.openWithHello(spec);
    if (reply.signature !== BoltSignature.SUCCESS) {
      this.#refuse({ refused: reply });
      return;
    }
    if (this.#clientState !== 'greeting') {
      if (upstream !== null) pool.release(upstream, { destroy: 'abandoned' });
      return;
    }
    if (upstream === null) this.#setUpstream('none');
    this.#lent = upstream;
    this.#replyToClient(BoltSignature.SUCCESS, reply.payload);
  }

  async #onPooledLogon(frame: BoltMessageFrame): Promise<void> {
    const pool = this.#pool as UpstreamPool;
    this.#observeClientMessage(frame);
    const fields = messageMetadata(frame.payload);
    if (fields === null) throw new ConnectionProblem('undecodable_message', 'the client sent a LOGON without metadata');
    const held = this.#lent;
    this.#lent = null;
    if (this.#upstreamState === 'none') this.#setUpstream('borrowing');
    const login = loginOf(fields);
    const logon = chunkMessage(frame.payload ?? EMPTY);
    this.#login = { login, logon };
    this.#link(await pool.checkoutForLogon(this.#spec(), login, logon, held));
  }

  /** Neo4j accepted the login: the client gets its reply, the upstream is lent, held requests go out. */
  #link(outcome: Lent | Refused): void {
    const pool = this.#pool as UpstreamPool;
    if ('refused' in outcome) {
      this.#refuse(outcome);
      return;
    }
    const { upstream, reply } = outcome;
    if (this.#clientState !== 'greeting' || this.#closeReason !== null) {
      // The client left while its login was checked: the upstream goes back clean.
      pool.release(upstream, { pendingSummaries: 0 });
      this.#setUpstream('returned');
      return;
    }
    this.#takeLent(upstream);
    this.#replyToClient(reply.signature, reply.payload);
    this.#setClient('linked');
    this.#sendUnsent();
    if (this.#clientSaidGoodbye) this.#afterGoodbye();
    else if (this.#pool?.mode === 'transaction') this.#endUnitIfDone();
    if (this.#draining) this.#closeIfIdle();
  }

  /**
   * Pooled: the client said GOODBYE. Neo4j would close the connection; the proxy closes the client's
   * side and returns the upstream, whose RESET drops any replies the client no longer waits for.
   */
  #afterGoodbye(): void {
    this.#closeReason ??= 'client_closed';
    this.#endClient();
    this.#endUpstream();
    this.#startLinger();
  }

  /** Neo4j refused the login: the client gets Neo4j's own FAILURE and the close, as it would directly. */
  #refuse(outcome: Refused): void {
    this.#replyToClient(outcome.refused.signature, outcome.refused.payload);
    this.#lent = null;
    if (this.#upstreamState === 'borrowing') this.#setUpstream('none');
    this.#closeReason ??= 'server_closed';
    this.#endClient();
  }

  /** A reply the proxy gives itself is observed like one Neo4j sent, so metrics stay whole. */
  #replyToClient(signature: number, payload: Buffer): void {
    this.#writeClient(chunkMessage(payload));
    this.#tracker.serverMessage({ signature, payload }, this.#now);
    this.#checkDecodeFailures('server');
  }

  #onCheckoutFailed(error: unknown): void {
    if (this.#closeReason !== null || this.#clientState === 'closed') return;
    const timedOut = error instanceof PoolTimeoutError;
    const reason = timedOut ? 'pool_timeout' : 'upstream_unavailable';
    const cause = error instanceof Error ? error : new Error('checkout failed');
    this.#closeReason = reason;
    this.#hooks.metrics.rejected(reason);
    this.#hooks.onProblem(this, reason, cause);
    const held = this.#lent;
    this.#lent = null;
    if (held !== null) this.#pool?.release(held, { destroy: 'abandoned' });
    if (this.#upstreamState === 'borrowing') this.#setUpstream('none');
    // A transient error: drivers retry it.
    this.#writeClient(
      failureMessage(
        {
          code: timedOut ? POOL_TIMEOUT_CODE : UPSTREAM_UNAVAILABLE_CODE,
          message: `neo4j-pool-sidecar: ${cause.message}`,
        },
        this.#handshake.negotiatedVersion,
      ),
    );
    this.#endClient();
  }

  #onLentUpstreamClosed(error: Error | null): void {
    this.#lent = null;
    if (this.#upstreamState === 'lent') this.#setUpstream('closed');
    if (this.#clientState === 'closed') {
      this.#finish();
      return;
    }
    this.#closeReason ??= error !== null && !this.#clientSaidGoodbye ? 'server_error' : this.#closedBy('server');
    for (const piece of this.#forwarder.flush()) this.#writeClient(piece);
    this.#endClient();
  }

  /** Pooled: the upstream goes back to the pool, reset first, or is closed when it cannot be made clean. */
  #returnUpstream(next: 'returned' | 'none' = 'returned'): void {
    const upstream = this.#lent;
    const pool = this.#pool;
    if (upstream === null || pool === null || this.#upstreamState !== 'lent') return;
    this.#lent = null;
    this.#setUpstream(next);
    if (this.#upstreamPaused) {
      this.#upstreamPaused = false;
      upstream.resume();
    }
    const reason = this.#unreusableBecause();
    // A unit of work that ended without a FAILURE leaves the upstream READY: no RESET round trip needed.
    const ready = next === 'none' && !this.#unitFailed;
    pool.release(
      upstream,
      reason === null ? { pendingSummaries: this.#tracker.pendingRequestCount, ready } : { destroy: reason },
    );
  }

  #unreusableBecause(): UpstreamCloseReason | null {
    if (this.#clientMessages.pendingMessageStart !== null && this.#goodbyeAt === null) return 'client_left_mid_message';
    // A reply only partly read: the pool could not find where the next one starts.
    if (this.#serverMessages.pendingMessageStart !== null) return 'client_left_mid_message';
    if (this.#clientChangedLogin) return 'client_changed_login';
    if (this.#closeReason !== null && !CLEAN_CLOSES.has(this.#closeReason)) return 'abandoned';
    return null;
  }

  #onServerMessage(frame: BoltMessageFrame): void {
    this.#countUnitSummary(frame);
    const routing = this.#tracker.serverMessage(frame, this.#now);
    this.#checkDecodeFailures('server');
    if (routing === null || frame.payload === null) return;
    const advertised = this.#settings.advertisedAddress;
    const rewritten =
      routing.kind === 'route-success'
        ? rewriteRouteSuccess(frame.payload, advertised)
        : rewriteRoutingProcedureRecord(frame.payload, advertised, routing.fields ?? undefined);
    if (rewritten === null) return;
    this.#forwarder.replace(frame.wireStart, frame.wireEnd, rewritten);
    this.#hooks.metrics.routingTableRewritten(routing.kind === 'route-success' ? 'ROUTE' : 'procedure');
  }

  /** The tracker reads past bad metadata to keep going; the proxy, forwarding it, closes the connection instead. */
  #checkDecodeFailures(side: 'client' | 'server'): void {
    const failures = this.#tracker.payloadDecodeFailureCount;
    if (failures === this.#decodeFailuresSeen) return;
    this.#decodeFailuresSeen = failures;
    throw new ConnectionProblem('undecodable_message', `the ${side} sent a message whose metadata is not PackStream`);
  }

  #onEvent(event: ConversationEvent): void {
    switch (event.type) {
      case 'queryFinished':
        this.#queries++;
        this.#hooks.metrics.queryFinished(event, this.userAgent);
        break;
      case 'failure':
        this.#unitFailed = true;
        break;
      case 'authFailure':
        this.#hooks.metrics.authFailure(this.#userAgent ?? userAgentFamily(this.#tracker.clientUserAgent));
        break;
      default:
        break;
    }
  }

  #writeClient(data: Buffer): void {
    if (this.#client.destroyed || this.#client.writableEnded) return;
    if (!this.#client.write(data) && !this.#upstreamPaused) {
      // Back-pressure: stop reading from Neo4j until the client has taken what it was sent.
      const upstream = this.#upstreamSocket();
      this.#upstreamPaused = true;
      upstream?.pause();
      this.#client.once('drain', () => {
        if (!this.#upstreamPaused) return;
        this.#upstreamPaused = false;
        upstream?.resume();
      });
    }
  }

  #writeUpstream(data: Buffer): void {
    if (this.#closeReason !== null) return;
    const own = this.#upstream ?? (this.#upstreamState === 'lent' ? null : this.#openUpstream());
    const onDrained = () => {
      this.#clientPaused = false;
      this.#client.resume();
    };
    let written: boolean;
    if (own !== null) {
      if (own.destroyed || own.writableEnded) return;
      written = own.write(data);
      if (!written && !this.#clientPaused) own.once('drain', onDrained);
    } else {
      const lent = this.#lent;
      if (lent === null || lent.state === 'gone') return;
      written = lent.write(data);
      if (!written && !this.#clientPaused) lent.onceDrained(onDrained);
    }
    if (!written && !this.#clientPaused) {
      this.#clientPaused = true;
      this.#client.pause();
    }
  }

  /** Codec errors close this one connection; anything else is a bug in the proxy, which must not take the process down. */
  #guarded(handle: () => void): void {
    try {
      handle();
    } catch (error) {
      const reason = problemReason(error);
      const cause =
        error instanceof Error && (error instanceof BoltCodecError || error instanceof ConnectionProblem)
          ? error
          : new Error('proxy bug: unexpected error while handling a connection', { cause: error });
      this.#fail(reason, cause);
    }
  }

  #fail(reason: ConnectionProblemReason, error: Error): void {
    if (this.#finished || this.#closeReason !== null) {
      this.#destroyBoth();
      return;
    }
    this.#closeReason = reason;
    this.#hooks.metrics.rejected(reason);
    this.#hooks.onProblem(this, reason, error);
    this.#destroyBoth();
  }

  #onHandshakeTimeout(): void {
    this.#handshakeTimer = null;
    if (this.#refusal !== null) {
      this.#client.destroy();
      return;
    }
    this.#fail(
      'handshake_timeout',
      new ConnectionProblem('handshake_timeout', `no Bolt handshake within ${this.#settings.handshakeTimeoutMs} ms`),
    );
  }

  #onSocketError(side: 'client' | 'server', error: Error): void {
    if (side === 'server' && this.#upstreamState === 'connecting' && this.#closeReason === null) {
      this.#onUpstreamUnavailable(error);
      return;
    }
    // A reset from Neo4j after the client's GOODBYE is still the client leaving.
    this.#closeReason ??=
      side === 'client' ? 'client_error' : this.#clientSaidGoodbye ? 'client_closed' : 'server_error';
    this.#destroyBoth();
  }

  /**
   * Neo4j could not be reached. If the client still waits for the handshake answer it is told why in
   * Bolt (a FAILURE to its HELLO); otherwise it is just closed.
   */
  #onUpstreamUnavailable(error: Error): void {
    if (this.#closeReason !== null) return;
    this.#closeReason = 'upstream_unavailable';
    this.#hooks.metrics.rejected('upstream_unavailable');
    this.#hooks.onProblem(this, 'upstream_unavailable', error);
    this.#upstream?.destroy();
    const received = this.#clientHandshakeBytes;
    if (received === null || this.#client.destroyed) {
      this.#client.destroy();
      return;
    }
    const { host, port } = this.#settings.upstream;
    this.#setClient('refusing');
    this.#refusal = new BoltRefusal(this.#client, {
      code: UPSTREAM_UNAVAILABLE_CODE,
      message: `neo4j-pool-sidecar could not reach Neo4j at ${formatAddress(host, port)}: ${error.message}`,
    });
    this.#clientHandshakeBytes = null;
    try {
      for (const data of received) this.#refusal.feed(data);
    } catch {
      this.#client.destroy();
    }
  }

  #onEnd(side: 'client' | 'server'): void {
    if (this.#refusal !== null) return;
    if (side === 'client' && this.#closeReason === null) {
      const problem = this.#truncatedClientStream();
      if (problem !== null) {
        this.#fail(problem.reason, problem);
        return;
      }
    }
    this.#closeReason ??= this.#closedBy(side);
    if (side === 'server') {
      if (this.#upstreamState === 'open' || this.#upstreamState === 'connecting') this.#setUpstream('ending');
      for (const piece of this.#forwarder.flush()) this.#writeClient(piece);
      this.#endClient();
    } else {
      if (this.#clientState !== 'closed') this.#setClient('ending');
      this.#endUpstream();
    }
    this.#startLinger();
  }

  #onSocketClose(side: 'client' | 'server'): void {
    if (side === 'client') {
      this.#setClient('closed');
      if (this.#upstreamState === 'lent' || this.#upstreamState === 'borrowing') {
        this.#closeReason ??= 'client_closed';
        this.#returnUpstream();
      }
    } else {
      this.#setUpstream('closed');
    }
    if (this.#clientState === 'closed' && UPSTREAM_DONE.has(this.#upstreamState)) {
      this.#finish();
      return;
    }
    if (side === 'server' && this.#refusal !== null) return;
    this.#closeReason ??= this.#closedBy(side);
    // The other side may still have bytes to deliver (a FAILURE before Neo4j closes): end, not destroy.
    if (side === 'client') this.#endUpstream();
    else {
      for (const piece of this.#forwarder.flush()) this.#writeClient(piece);
      this.#endClient();
    }
    this.#startLinger();
  }

  /** Neo4j closes at once on GOODBYE, so its close often arrives before the client's own. */
  #closedBy(side: 'client' | 'server'): CloseReason {
    return side === 'client' || this.#clientSaidGoodbye ? 'client_closed' : 'server_closed';
  }

  /** A client that ends its stream inside the handshake or inside a message sent something broken. */
  #truncatedClientStream(): ConnectionProblem | null {
    if (this.#clientState === 'handshaking') {
      return this.#clientSentBytes
        ? new ConnectionProblem('bad_handshake', 'client closed the connection in the middle of the handshake')
        : null;
    }
    return this.#clientMessages.pendingMessageStart === null
      ? null
      : new ConnectionProblem('framing', 'client closed the connection in the middle of a message (truncated chunk)');
  }

  #closeIfIdle(): void {
    if (this.#clientState === 'ending' || this.#clientState === 'closed' || this.#finished) return;
    const idle =
      this.#handshake.outcome !== 'agreed' ||
      (this.#tracker.pendingRequestCount === 0 &&
        this.#tracker.openQueryCount === 0 &&
        !this.#tracker.inExplicitTransaction);
    if (!idle) return;
    this.#closeReason ??= this.#clientSaidGoodbye ? 'client_closed' : 'shutdown';
    this.#endClient();
    this.#endUpstream();
    this.#startLinger();
  }

  #endClient(): void {
    if (this.#clientState !== 'closed' && this.#clientState !== 'refusing') this.#setClient('ending');
    this.#client.end();
  }

  /** Pass-through: half-close toward Neo4j. Pooled: the upstream goes back to the pool instead. */
  #endUpstream(): void {
    if (this.#upstream !== null) {
      if (this.#upstreamState === 'open' || this.#upstreamState === 'connecting') this.#setUpstream('ending');
      this.#upstream.end();
      return;
    }
    this.#returnUpstream();
  }

  #startLinger(): void {
    if (this.#lingerTimer !== null || this.#finished) return;
    this.#lingerTimer = setTimeout(() => this.#destroyBoth(), LINGER_MS);
    this.#lingerTimer.unref();
  }

  #destroyBoth(): void {
    this.#client.destroy();
    if (this.#upstream !== null) {
      this.#upstream.destroy();
      return;
    }
    this.#destroyHeld();
  }

  /** An upstream held for a LOGON that never came is closed. */
  #destroyHeld(): void {
    const held = this.#lent;
    if (held === null || this.#upstreamState === 'lent') return;
    this.#lent = null;
    if (this.#upstreamState === 'borrowing') this.#setUpstream('none');
    this.#pool?.release(held, { destroy: 'abandoned' });
  }

  #clearHandshakeTimer(): void {
    if (this.#handshakeTimer === null) return;
    clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = null;
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#clearHandshakeTimer();
    if (this.#lingerTimer !== null) clearTimeout(this.#lingerTimer);
    const metrics = this.#hooks.metrics;
    try {
      this.#tracker.close(performance.now());
    } catch {
      // Closing only reports open queries as abandoned; a failure there must not lose the close itself.
    }
    if (this.#userAgent === null) metrics.connectionOpened(UNKNOWN_USER_AGENT);
    this.flushTraffic();
    metrics.connectionClosed({
      userAgent: this.userAgent,
      reason: this.#closeReason ?? 'client_closed',
      lifetimeSeconds: (performance.now() - this.#acceptedAtMs) / 1000,
      queries: this.#queries,
    });
    this.#hooks.onClosed(this);
    this.#resolveClosed();
  }
}

/** A client that left one of these ways left its upstream in a state RESET can clean. */
const CLEAN_CLOSES: ReadonlySet<CloseReason> = new Set(['client_closed', 'client_error', 'shutdown']);

/** SUCCESS {} : the proxy's own answer to RESET, TELEMETRY and LOGOFF between units of work. */
const EMPTY_SUCCESS = Buffer.from([0xb1, BoltSignature.SUCCESS, 0xa0]);
/** IGNORED, the proxy's answer between units of work to a client FAILED as Neo4j sees it. */
const IGNORED = Buffer.from([0xb0, BoltSignature.IGNORED]);
const INVALID_REQUEST_CODE = 'Neo.ClientError.Request.Invalid';
/** Requests Neo4j 5.26 answers in FAILED with a FAILURE and a closed connection (the others: IGNORED). */
const INVALID_WHEN_FAILED: ReadonlySet<number> = new Set([
  BoltSignature.BEGIN,
  BoltSignature.LOGON,
  BoltSignature.LOGOFF,
]);
const SUMMARIES: ReadonlySet<number> = new Set([BoltSignature.SUCCESS, BoltSignature.FAILURE, BoltSignature.IGNORED]);

function messageMetadata(payload: Buffer | null): PackStreamMap | null {
  if (payload === null) return null;
  const first = decodeBoltMessage(payload).fields[0];
  return first instanceof Map ? (first as PackStreamMap) : null;
}
