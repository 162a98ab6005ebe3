/**
 * One client connection and the upstream connection opened for it. Bytes go both ways unchanged (the
 * same Buffers that are forwarded are fed to the codec, which only reads them); the one exception is a
 * routing table, which is held until complete and replaced by a copy pointing at the proxy.
 */
import type net from 'node:net';
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
  formatBoltVersion,
  PackStreamError,
  rewriteRouteSuccess,
  rewriteRoutingProcedureRecord,
  userAgentFamily,
} from './bolt/index.ts';
import { ServerStreamForwarder } from './forwarder.ts';
import { type CloseReason, type ProblemReason, type ProxyMetrics, UNKNOWN_USER_AGENT } from './metrics.ts';
import { BoltRefusal, UPSTREAM_UNAVAILABLE_CODE } from './refusal.ts';
import { connectUpstream, formatAddress, type UpstreamTarget } from './upstream.ts';

export interface ConnectionSettings {
  readonly upstream: UpstreamTarget;
  readonly advertisedAddress: string;
  readonly handshakeTimeoutMs: number;
  readonly upstreamConnectTimeoutMs: number;
  readonly maxMessageBytes: number;
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

/** How long one side may take to finish after the other closed, before it is cut off. */
const LINGER_MS = 5000;
const EMPTY = Buffer.alloc(0);

function problemReason(error: unknown): ConnectionProblemReason {
  if (error instanceof ConnectionProblem) return error.reason;
  if (error instanceof BoltHandshakeError)
    return error.reason === 'http-response' ? 'upstream_not_bolt' : 'bad_handshake';
  if (error instanceof BoltFramingError) return error.reason === 'message-too-large' ? 'message_too_large' : 'framing';
  if (error instanceof PackStreamError) return 'undecodable_message';
  if (error instanceof BoltConversationError) return 'too_many_pending';
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

  #upstreamConnected = false;
  #clientHandshakeDone = false;
  #serverHandshakeDone = false;
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
  #clientClosed = false;
  #upstreamClosed = false;
  #clientPaused = false;
  #upstreamPaused = false;
  #clientSentBytes = false;
  /** The client said GOODBYE: whichever side's close the proxy sees first, the client is the one leaving. */
  #clientSaidGoodbye = false;
  #draining = false;
  #ending = false;
  #finished = false;

  constructor(id: number, client: net.Socket, settings: ConnectionSettings, hooks: ConnectionHooks) {
    this.id = id;
    this.#client = client;
    this.#settings = settings;
    this.#hooks = hooks;
    this.remoteAddress = formatAddress(client.remoteAddress ?? 'unknown', client.remotePort ?? 0);
    this.#closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    this.#tracker = new BoltConversationTracker({
      onEvent: (event) => this.#onEvent(event),
      ...hooks.metrics.conversation,
    });
    this.#clientMessages = new BoltDechunker({
      keepPayload: this.#tracker.keepClientPayload,
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
    client.on('end', () => this.#onEnd('client'));
    client.on('error', (error) => this.#onSocketError('client', error));
    client.on('close', () => this.#onSocketClose('client'));
  }

  /** The first client bytes go out at once: Node queues writes until the connection (and TLS) is up. */
  #openUpstream(): net.Socket {
    const settings = this.#settings;
    const connectStartedMs = performance.now();
    const upstream = connectUpstream(settings.upstream, () => {
      this.#upstreamConnected = true;
      upstream.setTimeout(0);
      upstream.setNoDelay(true);
      upstream.setKeepAlive(true, 60_000);
      this.#hooks.metrics.upstreamConnected((performance.now() - connectStartedMs) / 1000);
    });
    upstream.setTimeout(settings.upstreamConnectTimeoutMs, () => {
      if (!this.#upstreamConnected) {
        upstream.destroy(new Error(`no connection within ${settings.upstreamConnectTimeoutMs} ms`));
      }
    });
    upstream.on('data', (data: Buffer) => this.#guarded(() => this.#onServerData(data)));
    upstream.on('end', () => this.#onEnd('server'));
    upstream.on('error', (error) => this.#onSocketError('server', error));
    upstream.on('close', () => this.#onSocketClose('server'));
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

  /** Bytes waiting in this connection: unsent socket buffers both ways plus a held message. */
  get bufferedBytes(): number {
    return this.#client.writableLength + (this.#upstream?.writableLength ?? 0) + this.#forwarder.heldBytes;
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

  #onClientData(data: Buffer): void {
    this.#now = performance.now();
    this.#unflushedBytesFromClient += data.length;
    this.#clientSentBytes = true;
    if (this.#refusal !== null) {
      this.#refusal.feed(data);
      return;
    }
    if (this.#clientHandshakeDone) {
      // Requests go to Neo4j first and are read after, so the tracker's work is not on the query's path.
      // Bad input still closes the connection in this same turn, before Neo4j can answer it.
      this.#writeUpstream(data);
      this.#clientMessages.feed(data);
      return;
    }
    this.#clientHandshakeBytes?.push(data);
    const progress = this.#handshake.feedClient(data);
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
    if (!this.#serverHandshakeDone) {
      const progress = this.#handshake.feedServer(data);
      if (progress.state === 'incomplete') {
        this.#writeClient(data);
        return;
      }
      const answerLength = data.length - progress.leftover.length;
      if (answerLength > 0) this.#writeClient(answerLength === data.length ? data : data.subarray(0, answerLength));
      this.#serverHandshakeDone = true;
      if (!this.#clientHandshakeDone) {
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
    if (this.#draining) this.#closeIfIdle();
  }

  #onClientHandshakeDone(leftover: Buffer): void {
    this.#clientHandshakeDone = true;
    if (leftover.length > 0) this.#clientMessages.feed(leftover);
  }

  #afterHandshakeProgress(): void {
    if (this.#version !== null || this.#handshake.outcome === 'pending') return;
    this.#clearHandshakeTimer();
    this.#version = versionLabel(this.#handshake);
    this.#hooks.metrics.boltVersion(this.#version);
    this.#hooks.onVersion(this.#version);
  }

  #onClientMessage(frame: BoltMessageFrame): void {
    if (frame.payloadDropped && frame.signature !== BoltSignature.RUN) {
      throw new ConnectionProblem(
        'message_too_large',
        `client message 0x${frame.signature.toString(16)} of ${frame.size} bytes exceeds proxy.maxMessageBytes`,
      );
    }
    this.#tracker.clientMessage(frame, this.#now);
    this.#checkDecodeFailures('client');
    if (frame.signature === BoltSignature.GOODBYE) this.#clientSaidGoodbye = true;
    if (frame.signature === BoltSignature.HELLO && this.#userAgent === null) {
      this.#userAgent = userAgentFamily(this.#tracker.clientUserAgent);
      this.#hooks.metrics.connectionOpened(this.#userAgent);
    }
  }

  #onServerMessage(frame: BoltMessageFrame): void {
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
      const upstream = this.#upstream;
      this.#upstreamPaused = true;
      upstream?.pause();
      this.#client.once('drain', () => {
        this.#upstreamPaused = false;
        upstream?.resume();
      });
    }
  }

  #writeUpstream(data: Buffer): void {
    if (this.#closeReason !== null) return;
    const upstream = this.#upstream ?? this.#openUpstream();
    if (upstream.destroyed || upstream.writableEnded) return;
    if (!upstream.write(data) && !this.#clientPaused) {
      this.#clientPaused = true;
      this.#client.pause();
      upstream.once('drain', () => {
        this.#clientPaused = false;
        this.#client.resume();
      });
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
    if (side === 'server' && !this.#upstreamConnected && this.#closeReason === null) {
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
      for (const piece of this.#forwarder.flush()) this.#writeClient(piece);
      this.#client.end();
    } else {
      this.#upstream?.end();
    }
    this.#startLinger();
  }

  #onSocketClose(side: 'client' | 'server'): void {
    if (side === 'client') this.#clientClosed = true;
    else this.#upstreamClosed = true;
    if (this.#clientClosed && (this.#upstreamClosed || this.#upstream === null)) {
      this.#finish();
      return;
    }
    if (side === 'server' && this.#refusal !== null) return;
    this.#closeReason ??= this.#closedBy(side);
    // The other side may still have bytes to deliver (a FAILURE before Neo4j closes): end, not destroy.
    if (side === 'client') this.#upstream?.end();
    else {
      for (const piece of this.#forwarder.flush()) this.#writeClient(piece);
      this.#client.end();
    }
    this.#startLinger();
  }

  /** Neo4j closes at once on GOODBYE, so its close often arrives before the client's own. */
  #closedBy(side: 'client' | 'server'): CloseReason {
    return side === 'client' || this.#clientSaidGoodbye ? 'client_closed' : 'server_closed';
  }

  /** A client that ends its stream inside the handshake or inside a message sent something broken. */
  #truncatedClientStream(): ConnectionProblem | null {
    if (!this.#clientHandshakeDone) {
      return this.#clientSentBytes
        ? new ConnectionProblem('bad_handshake', 'client closed the connection in the middle of the handshake')
        : null;
    }
    return this.#clientMessages.pendingMessageStart === null
      ? null
      : new ConnectionProblem('framing', 'client closed the connection in the middle of a message (truncated chunk)');
  }

  #closeIfIdle(): void {
    if (this.#ending || this.#finished) return;
    const idle =
      this.#handshake.outcome !== 'agreed' ||
      (this.#tracker.pendingRequestCount === 0 &&
        this.#tracker.openQueryCount === 0 &&
        !this.#tracker.inExplicitTransaction);
    if (!idle) return;
    this.#closeReason ??= 'shutdown';
    this.#ending = true;
    this.#client.end();
    this.#upstream?.end();
    this.#startLinger();
  }

  #startLinger(): void {
    if (this.#lingerTimer !== null || this.#finished) return;
    this.#lingerTimer = setTimeout(() => this.#destroyBoth(), LINGER_MS);
    this.#lingerTimer.unref();
  }

  #destroyBoth(): void {
    this.#client.destroy();
    this.#upstream?.destroy();
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
