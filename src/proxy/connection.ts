/**
 * One client connection: its socket, back-pressure both ways, close reasons, metrics and the
 * conversation tracker, the routing-table rewrite, drain and terminate, the handshake timeout. Bytes
 * go both ways unchanged (the same Buffers that are forwarded are fed to the codec, which only reads
 * them); the exceptions are a routing table, held until complete and replaced by a copy pointing at the
 * proxy, and the client's GOODBYE, which never reaches an upstream that outlives the client.
 *
 * Neo4j is reached through an UpstreamLink (upstream-link.ts): a socket opened for this client, or an
 * upstream the pool lends (pool/lent-link.ts). How the client's handshake and login are met is the
 * front's (front.ts), chosen once by the listener: pass-through with pooling off, pool/pooled-login.ts
 * in session mode, pool/transaction-units.ts in transaction mode. The connection is the fronts' host.
 *
 * Each side's life is one explicit state machine (connection-states.ts: its diagram holds for every
 * mode), and the connection finishes on the transition that leaves both done.
 *
 * Two closes of the proxy's own come at transaction boundaries or end a transaction on purpose: the
 * drain (shutdown) closes each client between transactions, never inside one; the idle-in-transaction
 * timeout closes a client that left its explicit transaction open and went silent, rolling it back.
 */
import type net from 'node:net';
import { userAgentFamily } from '../metrics/user-agent.ts';
import {
  BoltConversationTracker,
  BoltDechunker,
  BoltHandshake,
  type BoltMessageFrame,
  BoltSignature,
  type ConversationEvent,
  chunkMessage,
  messagePayload,
  type QueryFinishedEvent,
  requestMessage,
  rewriteRouteSuccess,
  rewriteRoutingProcedureRecord,
  type ServerHandshakeProgress,
} from './bolt/index.ts';
import { ConnectionStates } from './connection-states.ts';
import { ServerStreamForwarder } from './forwarder.ts';
import { type ConnectionFront, type FrontFactory, type FrontHost, PASS_THROUGH } from './front.ts';
import {
  boltVersionLabel,
  type CloseReason,
  type ProblemReason,
  type ProxyMetrics,
  UNKNOWN_USER_AGENT,
} from './metrics.ts';
import { mayCarryGoodbye } from './pool/lent-link.ts';
import { ConnectionProblem, type ConnectionProblemReason, problemCause, problemReason } from './problems.ts';
import { BoltRefusal, failureMessage, IDLE_TRANSACTION_TIMEOUT_CODE, UPSTREAM_UNAVAILABLE_CODE } from './refusal.ts';
import { formatAddress, type UpstreamTarget } from './upstream.ts';
import { type LinkRelease, type OwnUpstreamEvents, OwnUpstreamLink, type UpstreamLink } from './upstream-link.ts';

export interface ConnectionSettings {
  readonly upstream: UpstreamTarget;
  readonly advertisedAddress: string;
  readonly handshakeTimeoutMs: number;
  readonly upstreamConnectTimeoutMs: number;
  readonly maxMessageBytes: number;
  /** How clients are met (pooled login, units of work); pass-through when absent. */
  readonly front?: FrontFactory;
}

export interface ConnectionHooks {
  readonly metrics: ProxyMetrics;
  /** The proxy closed this connection because of `reason` (logged by the owner, rate-limited). */
  readonly onProblem: (connection: ProxiedConnection, reason: ProblemReason, error: Error) => void;
  readonly onVersion: (version: string) => void;
  readonly onClosed: (connection: ProxiedConnection) => void;
}

/** How long one side may take to finish after the other closed, before it is cut off. */
const LINGER_MS = 5000;
/** How long a client told its idle transaction was rolled back may stay, silent, to read why. */
const IDLE_TIMEOUT_LINGER_MS = 60_000;
/** What a client whose work was not started gets while the proxy stops: a transient error drivers retry. */
const SHUTTING_DOWN = {
  code: UPSTREAM_UNAVAILABLE_CODE,
  message: 'neo4j-pool-sidecar is shutting down; nothing of this request was run',
} as const;
/** IGNORED, the answer to each request after a FAILURE. */
const IGNORED_PAYLOAD = messagePayload(BoltSignature.IGNORED);
/** RESET as drivers send it, in one chunk. */
const RESET_MESSAGE = requestMessage(BoltSignature.RESET);
const EMPTY = Buffer.alloc(0);

export class ProxiedConnection implements FrontHost {
  readonly id: number;
  readonly remoteAddress: string;
  readonly handshake = new BoltHandshake();
  readonly #acceptedAtMs = performance.now();
  readonly #client: net.Socket;
  /** Null until the first upstream: a port probe that connects and leaves costs Neo4j nothing. */
  #link: UpstreamLink | null = null;
  #front: ConnectionFront;
  readonly #settings: ConnectionSettings;
  readonly #hooks: ConnectionHooks;
  readonly #tracker: BoltConversationTracker;
  readonly #clientMessages: BoltDechunker;
  readonly #upstreamMessages: BoltDechunker;
  readonly #forwarder = new ServerStreamForwarder();
  #resolveClosed: () => void = () => {};
  readonly #closed = new Promise<void>((resolve) => {
    this.#resolveClosed = resolve;
  });

  readonly states = new ConnectionStates(() => this.#finish());
  #version: string | null = null;
  /** The client's handshake bytes, kept until Neo4j answers, so an unreachable upstream can be reported in Bolt. */
  #clientHandshakeBytes: Buffer[] | null = [];
  #refusal: BoltRefusal | null = null;
  readonly #handshakeTimer: NodeJS.Timeout;
  #lingerTimer: NodeJS.Timeout | null = null;
  /** Time of the read being processed: one clock read per read, not per message. */
  #now = 0;
  /** When the client's last read came (performance.now()): the idle-in-transaction check reads it. */
  #clientReadAtMs = performance.now();
  /** When the idle-in-transaction timeout rolled this client's transaction back and sent it the FAILURE. */
  #idleTimedOutAtMs: number | null = null;
  #decodeFailuresSeen = 0;
  #userAgent: string | null = null;
  #queries = 0;
  #unflushedBytesFromClient = 0;
  #unflushedBytesFromUpstream = 0;
  #closeReason: CloseReason | null = null;
  #clientPaused = false;
  #upstreamPaused = false;
  /** Client stream offset of its GOODBYE: whichever side's close the proxy sees first, the client is the one leaving. */
  #goodbyeAt: number | null = null;
  /** Part of the GOODBYE reached a lent upstream with an earlier read: it cannot be reused. */
  #goodbyeForwarded = false;
  #draining = false;
  #finished = false;
  /** Upstream reads: queries they finish are recorded once the read is written on, off the reply's path. */
  #holdFinishedQueries = false;
  readonly #finishedQueries: QueryFinishedEvent[] = [];

  readonly upstreamEvents: OwnUpstreamEvents = {
    onConnected: (seconds) => {
      if (this.states.upstream === 'connecting') this.states.setUpstream('linked');
      this.#hooks.metrics.upstreamConnected(seconds);
    },
    onData: (data) => this.guarded(() => this.#onUpstreamData(data)),
    onEnd: () => this.guarded(() => this.#onEnd('upstream')),
    onError: (error) => this.guarded(() => this.#onUpstreamError(error)),
    onClosed: (error) => this.guarded(() => this.#onUpstreamClosed(error)),
  };
  readonly #resumeClient = (): void => {
    this.#clientPaused = false;
    this.#client.resume();
  };
  readonly #resumeUpstream = (): void => {
    if (!this.#upstreamPaused) return;
    this.#upstreamPaused = false;
    this.#link?.resume();
  };

  constructor(id: number, client: net.Socket, settings: ConnectionSettings, hooks: ConnectionHooks) {
    this.id = id;
    this.#client = client;
    this.#settings = settings;
    this.#hooks = hooks;
    this.remoteAddress = formatAddress(client.remoteAddress ?? 'unknown', client.remotePort ?? 0);
    this.#front = settings.front?.(this) ?? PASS_THROUGH;
    this.#tracker = new BoltConversationTracker({
      onEvent: (event) => this.#onEvent(event),
      ...hooks.metrics.conversation,
    });
    const keepClientPayload = this.#tracker.keepClientPayload;
    const frontPayloads = this.#front.clientPayloads;
    this.#clientMessages = new BoltDechunker({
      keepPayload:
        frontPayloads.size === 0
          ? keepClientPayload
          : (signature) => frontPayloads.has(signature) || keepClientPayload(signature),
      maxPayloadBytes: settings.maxMessageBytes,
      // Checked per message in #onClientMessage: only RUN may exceed the bound.
      oversizedPayload: 'drop',
      onMessage: (frame) => this.#onClientMessage(frame),
    });
    this.#upstreamMessages = new BoltDechunker({
      keepPayload: this.#tracker.keepServerPayload,
      maxPayloadBytes: settings.maxMessageBytes,
      oversizedPayload: 'error',
      onMessage: (frame) => this.#onUpstreamMessage(frame),
    });
    hooks.metrics.connectionAccepted();

    this.#handshakeTimer = setTimeout(() => this.#onHandshakeTimeout(), settings.handshakeTimeoutMs);
    client.on('data', (data: Buffer) => this.guarded(() => this.#onClientData(data)));
    client.on('end', () => this.guarded(() => this.#onEnd('client')));
    client.on('error', () => {
      this.#closeReason ??= 'client_error';
      this.#destroyBoth();
    });
    client.on('close', () => this.guarded(() => this.#onClientClosed()));
  }

  /** Resolves once both sockets are closed and the connection's metrics are recorded. */
  get closed(): Promise<void> {
    return this.#closed;
  }

  get userAgent(): string {
    return this.#userAgent ?? UNKNOWN_USER_AGENT;
  }

  /** Queries this client has run so far. */
  get queryCount(): number {
    return this.#queries;
  }

  get openQueries(): number {
    return this.#tracker.openQueryCount;
  }

  /** Bytes waiting in this connection: unsent socket buffers both ways plus a held message. */
  get bufferedBytes(): number {
    return this.#client.writableLength + (this.#link?.bufferedBytes ?? 0) + this.#forwarder.heldBytes;
  }

  get closing(): boolean {
    return this.#closeReason !== null;
  }

  get advertisedAddress(): string {
    return this.#settings.advertisedAddress;
  }

  get goodbyeAt(): number | null {
    return this.#goodbyeAt;
  }

  get clientBytesRead(): number {
    return this.#clientMessages.bytesFed;
  }

  get quiet(): boolean {
    return (
      this.#nothingOpen() &&
      this.#clientMessages.pendingMessageStart === null &&
      this.#upstreamMessages.pendingMessageStart === null &&
      this.#forwarder.heldBytes === 0
    );
  }

  /** Adds the bytes and messages counted since the last call to the metrics. */
  flushTraffic(): void {
    this.#hooks.metrics.traffic(
      this.#unflushedBytesFromClient,
      this.#unflushedBytesFromUpstream,
      this.#tracker.takeMessageCounts(),
    );
    this.#unflushedBytesFromClient = 0;
    this.#unflushedBytesFromUpstream = 0;
  }

  /** Shutdown, first step: close as soon as nothing is in flight (now, if nothing is). */
  drain(): void {
    this.#draining = true;
    this.#closeIfIdle();
  }

  /** Shutdown, after the grace period: close whatever is still going on. */
  terminate(): void {
    this.#closeReason ??= 'shutdown_grace_over';
    this.#destroyBoth();
  }

  /**
   * The idle-in-transaction timeout, checked by the listener's coarse timer (nothing per message): a
   * client inside an explicit transaction that has sent nothing since `idleSinceMs` (performance.now()
   * time) and awaits no reply has its transaction rolled back (a lent upstream is RESET before reuse;
   * an own one is closed, which Neo4j rolls back) and gets a FAILURE saying so; the client is closed on
   * its next request or IDLE_TIMEOUT_LINGER_MS later. True when it timed out now.
   */
  closeIfIdleInTransaction(idleSinceMs: number, timeoutMs: number): boolean {
    const timedOutAt = this.#idleTimedOutAtMs;
    if (timedOutAt !== null) {
      if (timedOutAt + IDLE_TIMEOUT_LINGER_MS <= idleSinceMs + timeoutMs) this.#closeAfterIdleTimeout();
      return false;
    }
    if (this.#closeReason !== null || this.states.client !== 'linked' || this.#clientReadAtMs > idleSinceMs) {
      return false;
    }
    const tracker = this.#tracker;
    // A client paused by back-pressure is not silent: the proxy stopped reading it.
    if (!tracker.inExplicitTransaction || tracker.pendingRequestCount > 0 || this.#clientPaused) return false;
    this.#closeReason = 'idle_transaction_timeout';
    this.#idleTimedOutAtMs = idleSinceMs + timeoutMs;
    this.#hooks.metrics.idleTransactionTimedOut(this.userAgent);
    const message =
      `neo4j-pool-sidecar: the transaction was left open with nothing sent for ${timeoutMs} ms ` +
      '(proxy.idleTransactionTimeoutMs); it was rolled back and the connection is closed';
    this.writeClient(
      failureMessage({ code: IDLE_TRANSACTION_TIMEOUT_CODE, message }, this.handshake.negotiatedVersion),
    );
    if (this.#link?.outlivesClient) this.#endUpstream();
    else this.#link?.destroy();
    return true;
  }

  /**
   * The FAILURE went out unasked. A driver that reads eagerly (JavaScript) marks the connection broken
   * with it and answers it with a RESET of its own; its next call in the transaction reports the FAILURE
   * only while the socket is still open, so the client is closed on its next request other than RESET
   * (a lazy reader, Python or Go, reads the FAILURE as that request's answer) or after
   * IDLE_TIMEOUT_LINGER_MS more.
   */
  #afterIdleTimeout(data: Buffer): void {
    if (!data.equals(RESET_MESSAGE)) this.#closeAfterIdleTimeout();
  }

  #closeAfterIdleTimeout(): void {
    if (this.states.client !== 'linked') return;
    this.#endClient();
    this.#startLinger();
  }

  #onClientData(data: Buffer): void {
    this.#now = performance.now();
    this.#clientReadAtMs = this.#now;
    if (this.#idleTimedOutAtMs !== null) {
      this.#afterIdleTimeout(data);
      return;
    }
    this.#unflushedBytesFromClient += data.length;
    if (this.#refusal !== null) {
      this.#refusal.feed(data);
      return;
    }
    if (this.states.client === 'linked') {
      const link = this.#link;
      if (link === null) {
        this.#front.holdRead(data);
      } else if (!link.outlivesClient) {
        // Requests go to Neo4j first and are read after, so the tracker's work is not on the query's path.
        // Bad input still closes the connection in this same turn, before Neo4j can answer it.
        this.writeUpstream(data);
        this.#clientMessages.feed(data);
      } else {
        this.#forwardToLent(data);
      }
      return;
    }
    if (this.states.client === 'logging-in') {
      this.#front.holdRead(data);
      return;
    }
    if (this.states.client !== 'handshaking') return;
    this.#clientHandshakeBytes?.push(data);
    const progress = this.handshake.feedClient(data);
    if (this.#front.onHandshakeRead(progress)) return;
    if (progress.state === 'complete') this.#onClientHandshakeDone(progress.leftover);
    this.recordVersion();
    this.#forwardHandshake([data]);
  }

  /**
   * A lent upstream serves other clients after this one, so the client's GOODBYE must not reach it: a
   * read that may carry one is read first and forwarded only up to it; any other goes out first.
   */
  #forwardToLent(data: Buffer): void {
    const messages = this.#clientMessages;
    if (!mayCarryGoodbye(data, messages)) {
      this.writeUpstream(data);
      messages.feed(data);
      if (this.#goodbyeAt === null) return;
      // A GOODBYE spread over several chunks (no driver sends one) went out: that upstream is not reused.
      this.#goodbyeForwarded = true;
      this.afterGoodbye();
      return;
    }
    const offset = messages.bytesFed;
    messages.feed(data);
    const goodbye = this.#goodbyeAt;
    if (goodbye === null) {
      this.writeUpstream(data);
      return;
    }
    if (goodbye > offset) this.writeUpstream(data.subarray(0, goodbye - offset));
    else if (goodbye < offset) this.#goodbyeForwarded = true;
    this.afterGoodbye();
  }

  /** The client's handshake goes to an upstream opened for it on its first bytes. */
  #forwardHandshake(reads: readonly Buffer[]): void {
    if (this.#closeReason !== null) return;
    if (this.#link === null) {
      this.states.setUpstream('connecting');
      const { upstream, upstreamConnectTimeoutMs } = this.#settings;
      this.#link = new OwnUpstreamLink(upstream, upstreamConnectTimeoutMs, this.upstreamEvents);
    }
    for (const data of reads) this.writeUpstream(data);
  }

  #onUpstreamData(data: Buffer): void {
    if (this.#refusal !== null) return;
    this.#now = performance.now();
    this.#unflushedBytesFromUpstream += data.length;
    this.#clientHandshakeBytes = null;
    let messages = data;
    if (!this.handshake.serverComplete) {
      const progress = this.handshake.feedServer(data);
      if (progress.state === 'incomplete') {
        this.writeClient(data);
        return;
      }
      const answerLength = data.length - progress.leftover.length;
      if (answerLength > 0) this.writeClient(answerLength === data.length ? data : data.subarray(0, answerLength));
      if (this.states.client === 'handshaking') {
        // Bytes the client sent past its offers were held by the codec until the answer said what they are.
        const clientProgress = this.handshake.feedClient(EMPTY);
        if (clientProgress.state === 'complete') this.#onClientHandshakeDone(clientProgress.leftover);
      }
      this.recordVersion();
      if (progress.state === 'no-match') {
        // Neo4j closes next; anything it still sent is passed on, unobserved.
        if (progress.leftover.length > 0) this.writeClient(progress.leftover);
        return;
      }
      if (progress.leftover.length === 0) return;
      messages = progress.leftover;
    }
    const offset = this.#upstreamMessages.bytesFed;
    this.#holdFinishedQueries = true;
    try {
      this.#upstreamMessages.feed(messages);
    } finally {
      this.#holdFinishedQueries = false;
    }
    let safeEnd = offset + messages.length;
    const pendingStart = this.#upstreamMessages.pendingMessageStart;
    if (pendingStart !== null) {
      // Hold back only a message that may have to be replaced: signature not known yet, or one the tracker keeps.
      const signature = this.#upstreamMessages.pendingMessageSignature;
      if (signature === null || this.#tracker.keepServerPayload(signature)) safeEnd = pendingStart;
    }
    for (const piece of this.#forwarder.take(messages, offset, safeEnd)) this.writeClient(piece);
    this.#recordFinishedQueries();
    this.#front.afterUpstreamRead();
    if (this.#draining) this.#closeIfIdle();
  }

  #onClientHandshakeDone(leftover: Buffer): void {
    if (this.states.client === 'handshaking') this.states.setClient('linked');
    if (leftover.length > 0) this.#clientMessages.feed(leftover);
  }

  recordVersion(): void {
    if (this.#version !== null || this.handshake.outcome === 'pending') return;
    clearTimeout(this.#handshakeTimer);
    this.#version = boltVersionLabel(this.handshake);
    this.#hooks.metrics.boltVersion(this.#version);
    this.#hooks.onVersion(this.#version);
  }

  answerHandshake(answer: Buffer): ServerHandshakeProgress {
    this.#clientHandshakeBytes = null;
    this.writeClient(answer);
    return this.handshake.feedServer(answer);
  }

  passThrough(): void {
    this.#front = PASS_THROUGH;
    this.#forwardHandshake(this.#clientHandshakeBytes ?? []);
    if (this.handshake.clientComplete) this.#onClientHandshakeDone(EMPTY);
  }

  #onClientMessage(frame: BoltMessageFrame): void {
    if (frame.payloadDropped && frame.signature !== BoltSignature.RUN) {
      throw new ConnectionProblem(
        'message_too_large',
        `client message 0x${frame.signature.toString(16)} of ${frame.size} bytes exceeds proxy.maxMessageBytes`,
      );
    }
    if (frame.signature === BoltSignature.GOODBYE) this.#goodbyeAt ??= frame.wireStart;
    if (this.#front.onClientMessage(frame)) return;
    this.observeClientMessage(frame);
  }

  readClient(data: Buffer): void {
    this.#clientMessages.feed(data);
  }

  observeClientMessage(frame: BoltMessageFrame): void {
    this.#tracker.clientMessage(frame, this.#now);
    this.#checkDecodeFailures('client');
    if (frame.signature === BoltSignature.HELLO && this.#userAgent === null) {
      this.#userAgent = userAgentFamily(this.#tracker.clientUserAgent);
      this.#hooks.metrics.connectionOpened(this.#userAgent);
    }
  }

  replyToClient(signature: number, payload: Buffer): void {
    this.writeClient(chunkMessage(payload));
    this.#tracker.serverMessage({ signature, payload }, this.#now);
    this.#checkDecodeFailures('upstream');
  }

  useLink(link: UpstreamLink): void {
    this.#link = link;
    this.states.setUpstream('linked');
  }

  returnUpstream(ready: boolean): void {
    this.#endUpstream(ready, 'unlinked');
  }

  closeClient(reason: CloseReason): void {
    this.#closeReason ??= reason;
    this.#endClient();
    this.#startLinger();
  }

  rejectClient(reason: ConnectionProblemReason, cause: Error, failure: Buffer): void {
    this.#closeReason = reason;
    this.#hooks.metrics.rejected(reason);
    this.#hooks.onProblem(this, reason, cause);
    this.writeClient(failure);
    this.#endClient();
  }

  /** Neo4j would close the connection on GOODBYE; the proxy closes the client's side and releases the upstream. */
  afterGoodbye(): void {
    this.#closeReason ??= 'client_closed';
    this.#endClient();
    this.#endUpstream();
    this.#startLinger();
  }

  closeIfDraining(): void {
    if (this.#draining) this.#closeIfIdle();
  }

  #onUpstreamMessage(frame: BoltMessageFrame): void {
    this.#front.onUpstreamMessage(frame);
    const routing = this.#tracker.serverMessage(frame, this.#now);
    this.#checkDecodeFailures('upstream');
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
  #checkDecodeFailures(side: 'client' | 'upstream'): void {
    const failures = this.#tracker.payloadDecodeFailureCount;
    if (failures === this.#decodeFailuresSeen) return;
    this.#decodeFailuresSeen = failures;
    const who = side === 'client' ? 'the client' : 'Neo4j';
    throw new ConnectionProblem('undecodable_message', `${who} sent a message whose metadata is not PackStream`);
  }

  #onEvent(event: ConversationEvent): void {
    if (event.type === 'queryFinished') {
      this.#queries++;
      if (this.#holdFinishedQueries) this.#finishedQueries.push(event);
      else this.#hooks.metrics.queryFinished(event, this.userAgent);
    } else if (event.type === 'authFailure') {
      this.#hooks.metrics.authFailure(this.#userAgent ?? userAgentFamily(this.#tracker.clientUserAgent));
    }
  }

  #recordFinishedQueries(): void {
    const finished = this.#finishedQueries;
    if (finished.length === 0) return;
    for (const event of finished) this.#hooks.metrics.queryFinished(event, this.userAgent);
    finished.length = 0;
  }

  replaceUpstreamMessage(frame: BoltMessageFrame, message: Buffer): void {
    this.#forwarder.replace(frame.wireStart, frame.wireEnd, message);
  }

  writeClient(data: Buffer): void {
    const client = this.#client;
    if (client.destroyed || client.writableEnded) return;
    if (client.write(data) || this.#upstreamPaused) return;
    // Back-pressure: stop reading from Neo4j until the client has taken what it was sent.
    this.#upstreamPaused = true;
    this.#link?.pause();
    client.once('drain', this.#resumeUpstream);
  }

  writeUpstream(data: Buffer): void {
    const link = this.#link;
    if (link === null || this.#closeReason !== null) return;
    if (link.write(data) || this.#clientPaused) return;
    // Back-pressure: stop reading from the client until Neo4j has taken what it was sent.
    this.#clientPaused = true;
    this.#client.pause();
    link.onceDrained(this.#resumeClient);
  }

  /** Codec errors close this one connection; anything else is a bug in the proxy, which must not take the process down. */
  guarded(handle: () => void): void {
    try {
      handle();
    } catch (error) {
      this.#fail(problemReason(error), problemCause(error));
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
    if (this.#refusal !== null) {
      this.#client.destroy();
      return;
    }
    this.#fail(
      'handshake_timeout',
      new ConnectionProblem('handshake_timeout', `no Bolt handshake within ${this.#settings.handshakeTimeoutMs} ms`),
    );
  }

  #onUpstreamError(error: Error): void {
    if (this.states.upstream === 'connecting' && this.#closeReason === null) {
      this.upstreamUnavailable(error);
      return;
    }
    // A reset from Neo4j after the client's GOODBYE is still the client leaving.
    this.#closeReason ??= this.#goodbyeAt !== null ? 'client_closed' : 'server_error';
    this.#destroyBoth();
  }

  /**
   * Neo4j could not be reached. If the client still waits for the handshake answer it is told why in
   * Bolt (a FAILURE to its HELLO); otherwise it is just closed.
   */
  upstreamUnavailable(error: Error): void {
    if (this.#closeReason !== null) return;
    this.#closeReason = 'upstream_unavailable';
    this.#hooks.metrics.rejected('upstream_unavailable');
    this.#hooks.onProblem(this, 'upstream_unavailable', error);
    this.#link?.destroy();
    const received = this.#clientHandshakeBytes;
    if (received === null || this.#client.destroyed) {
      this.#client.destroy();
      return;
    }
    const { host, port } = this.#settings.upstream;
    const message = `neo4j-pool-sidecar could not reach Neo4j at ${formatAddress(host, port)}: ${error.message}`;
    this.states.setClient('refusing');
    this.#clientHandshakeBytes = null;
    this.#refusal = BoltRefusal.replaying(this.#client, { code: UPSTREAM_UNAVAILABLE_CODE, message }, received);
  }

  #onEnd(side: 'client' | 'upstream'): void {
    if (this.#refusal !== null) return;
    if (side === 'client' && this.#closeReason === null) {
      const problem = this.#truncatedClientStream();
      if (problem !== null) {
        this.#fail(problem.reason, problem);
        return;
      }
    }
    this.#closeReason ??= this.#closedBy(side);
    if (side === 'upstream') {
      if (this.states.upstream === 'linked' || this.states.upstream === 'connecting') this.states.setUpstream('ending');
      this.#flushAndEndClient();
    } else {
      if (this.states.client !== 'closed') this.states.setClient('ending');
      this.#endUpstream();
    }
    this.#startLinger();
  }

  #onClientClosed(): void {
    this.states.setClient('closed');
    if (this.#finished) return;
    this.#closeReason ??= 'client_closed';
    this.#front.abandon();
    // The upstream may still have bytes to deliver: ended (or returned), not destroyed.
    this.#endUpstream();
    this.#startLinger();
  }

  /** Neo4j closed (`error`: the link failed), or an own socket closed after either side ended. */
  #onUpstreamClosed(error: Error | null): void {
    this.#link = null;
    if (this.#answeredLostUnit()) return;
    this.states.setUpstream('disconnected');
    // The idle-in-transaction timeout closed it (rolling back); the client is closed on its own schedule.
    if (this.#finished || this.#refusal !== null || this.#idleTimedOutAtMs !== null) return;
    if (error !== null && this.#goodbyeAt === null) this.#closeReason ??= 'server_error';
    this.#closeReason ??= this.#closedBy('upstream');
    this.#flushAndEndClient();
    this.#startLinger();
  }

  /**
   * Transaction mode: a lent upstream died inside a unit of work, with requests unanswered and nothing
   * of a reply half-sent. When the front says the client may retry (a read unit), the first request gets
   * the front's FAILURE and the rest IGNORED, as Neo4j answers after a FAILURE; the client keeps its
   * connection and its next unit is lent a new upstream. True when answered so.
   */
  #answeredLostUnit(): boolean {
    if (this.#finished || this.#closeReason !== null || this.#idleTimedOutAtMs !== null || this.#goodbyeAt !== null)
      return false;
    if (this.states.client !== 'linked' || this.states.upstream !== 'linked') return false;
    const pending = this.#tracker.pendingRequestCount;
    const midMessage =
      this.#clientMessages.pendingMessageStart !== null ||
      this.#upstreamMessages.pendingMessageStart !== null ||
      this.#forwarder.heldBytes > 0;
    if (pending === 0 || midMessage) return false;
    const failure = this.#front.unitLost();
    if (failure === null) return false;
    this.states.setUpstream('unlinked');
    this.#upstreamPaused = false;
    // A client paused for the dead upstream's back-pressure would wait for a drain that never comes.
    if (this.#clientPaused) this.#resumeClient();
    this.replyToClient(BoltSignature.FAILURE, failure);
    for (let request = 1; request < pending; request++) this.replyToClient(BoltSignature.IGNORED, IGNORED_PAYLOAD);
    this.closeIfDraining();
    return true;
  }

  /** The client may still have bytes to receive (a FAILURE before Neo4j closed): ended, not destroyed. */
  #flushAndEndClient(): void {
    for (const piece of this.#forwarder.flush()) this.writeClient(piece);
    this.#endClient();
  }

  /** Neo4j closes at once on GOODBYE, so its close often arrives before the client's own. */
  #closedBy(side: 'client' | 'upstream'): CloseReason {
    return side === 'client' || this.#goodbyeAt !== null ? 'client_closed' : 'server_closed';
  }

  /** A client that ends its stream inside the handshake or inside a message sent something broken. */
  #truncatedClientStream(): ConnectionProblem | null {
    if (this.states.client === 'handshaking') {
      // Its handshake bytes are kept until answered: none kept and none answered, none sent.
      return this.#clientHandshakeBytes?.length !== 0
        ? new ConnectionProblem('bad_handshake', 'client closed the connection in the middle of the handshake')
        : null;
    }
    return this.#clientMessages.pendingMessageStart === null
      ? null
      : new ConnectionProblem('framing', 'client closed the connection in the middle of a message (truncated chunk)');
  }

  #closeIfIdle(): void {
    if (this.states.client === 'ending' || this.states.client === 'closed' || this.#finished) return;
    if (this.#idleTimedOutAtMs !== null) {
      this.#closeAfterIdleTimeout();
      return;
    }
    if (this.states.client === 'linked' && this.states.upstream === 'checking-out') {
      this.#refuseUnstartedUnit();
      return;
    }
    const handshakeBytes = this.#clientHandshakeBytes;
    if (this.states.client === 'handshaking' && this.#link === null && handshakeBytes !== null) {
      // Pooled, the handshake not answered yet: answered as a refusal the driver retries, not a bare close.
      this.#closeReason ??= 'shutdown';
      this.states.setClient('refusing');
      this.#clientHandshakeBytes = null;
      this.#refusal = BoltRefusal.replaying(this.#client, SHUTTING_DOWN, handshakeBytes);
      return;
    }
    if (this.handshake.outcome === 'agreed' && !this.#nothingOpen()) return;
    this.#closeReason ??= this.#goodbyeAt !== null ? 'client_closed' : 'shutdown';
    this.#endClient();
    this.#endUpstream();
    this.#startLinger();
  }

  /**
   * Transaction mode, draining: the client's next unit of work waits for an upstream and has not reached
   * Neo4j, so it is not started; a transient FAILURE (drivers retry it elsewhere) and the close instead.
   */
  #refuseUnstartedUnit(): void {
    this.#closeReason ??= 'shutdown';
    this.writeClient(failureMessage(SHUTTING_DOWN, this.handshake.negotiatedVersion));
    this.#endClient();
    this.#startLinger();
  }

  /** No request unanswered, no query or transaction open. */
  #nothingOpen(): boolean {
    const tracker = this.#tracker;
    return tracker.pendingRequestCount === 0 && tracker.openQueryCount === 0 && !tracker.inExplicitTransaction;
  }

  #endClient(): void {
    if (this.states.client !== 'closed' && this.states.client !== 'refusing') this.states.setClient('ending');
    this.#client.end();
  }

  /** Own socket: half-closed toward Neo4j. Lent upstream: back to the pool, reset first, or closed. */
  #endUpstream(ready = false, next: 'released' | 'unlinked' = 'released'): void {
    const link = this.#link;
    if (link === null) return;
    if (!link.release(this.#releaseFacts(ready))) {
      if (this.states.upstream === 'linked' || this.states.upstream === 'connecting') this.states.setUpstream('ending');
      return;
    }
    this.#link = null;
    this.#upstreamPaused = false;
    this.states.setUpstream(next);
  }

  #releaseFacts(ready: boolean): LinkRelease {
    const clientMidMessage = this.#clientMessages.pendingMessageStart !== null && this.#goodbyeAt === null;
    return {
      midMessage: clientMidMessage || this.#upstreamMessages.pendingMessageStart !== null || this.#goodbyeForwarded,
      closeReason: this.#closeReason,
      pendingSummaries: this.#tracker.pendingRequestCount,
      ready,
    };
  }

  #startLinger(): void {
    if (this.#lingerTimer !== null || this.#finished) return;
    this.#lingerTimer = setTimeout(() => this.#destroyBoth(), LINGER_MS);
    this.#lingerTimer.unref();
  }

  #destroyBoth(): void {
    this.#client.destroy();
    this.#link?.destroy();
    this.#front.abandon();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    clearTimeout(this.#handshakeTimer);
    if (this.#lingerTimer !== null) clearTimeout(this.#lingerTimer);
    const metrics = this.#hooks.metrics;
    try {
      this.#tracker.close(performance.now());
    } catch {
      // Closing only reports open queries as abandoned; a failure there must not lose the close itself.
    }
    if (this.#userAgent === null) metrics.connectionOpened(UNKNOWN_USER_AGENT);
    this.#recordFinishedQueries();
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
