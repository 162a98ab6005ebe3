/**
 * The pooled login front end (session mode, and the login of transaction mode): the proxy answers the
 * client's handshake from the versions it learnt from Neo4j, its HELLO from a recorded reply (or the
 * reply of an upstream opened with it), and its LOGON with Neo4j's own verdict on an upstream the pool
 * lends for it; every login is still verified by Neo4j (see pool.ts). Owns what that needs: the HELLO,
 * the verified login, the login steps in order, an upstream held between HELLO and LOGON, and the
 * client bytes held while no upstream is lent. A Neo4j that predates the manifest handshake cannot be
 * answered for: its clients are handed to a pass-through link instead.
 *
 *   client:   handshaking → logging-in → linked          (the connection's states, see connection-states.ts)
 *   upstream: unlinked → checking-out → linked → released
 *             (checking-out also while an upstream opened with the HELLO is held for the LOGON)
 */
import {
  type BoltMessageFrame,
  BoltSignature,
  chunkMessage,
  formatBoltVersion,
  type HandshakeProgress,
  messageMetadata,
  type PackStreamMap,
} from '../bolt/index.ts';
import type { ConnectionFront, FrontHost } from '../front.ts';
import { ConnectionProblem } from '../problems.ts';
import { failureMessage, POOL_TIMEOUT_CODE, UPSTREAM_UNAVAILABLE_CODE } from '../refusal.ts';
import { hasLogon, loginOf, settingsKey } from './connection-key.ts';
import { LentUpstreamLink } from './lent-link.ts';
import {
  type CheckoutOptions,
  type Lent,
  PoolTimeoutError,
  type Refused,
  type UpstreamPool,
  type UpstreamSpec,
} from './pool.ts';
import type { PooledUpstream } from './pooled-upstream.ts';
import { answerOffers, type ServerVersions, serverSpeaks } from './server-versions.ts';
import type { VerifiedLogin } from './verified-checkout.ts';

const EMPTY = Buffer.alloc(0);
const LOGON_PAYLOAD: ReadonlySet<number> = new Set([BoltSignature.LOGON]);

/**
 * Client bytes read while no upstream is lent, kept to be forwarded once one is; offsets are positions
 * in the client's message stream.
 */
export class HeldRequests {
  #reads: Buffer[] = [];
  /** Stream offset of the first held byte. */
  #start = 0;
  /** Bytes before this offset were answered by the proxy and are never forwarded. */
  #forwardFrom = 0;

  /** Nothing held; the next read starts at `offset`. */
  restartAt(offset: number): void {
    this.#reads = [];
    this.#start = offset;
    this.#forwardFrom = offset;
  }

  push(data: Buffer): void {
    this.#reads.push(data);
  }

  /** Everything before `offset` was answered here. */
  skipTo(offset: number): void {
    this.#forwardFrom = offset;
  }

  /** Sends what is held from the first byte not answered here, up to `end` (a GOODBYE) if given. */
  sendTo(host: FrontHost, end: number | null): void {
    const reads = this.#reads;
    const held = reads.length === 1 ? (reads[0] as Buffer) : Buffer.concat(reads);
    const start = this.#start;
    const from = this.#forwardFrom - start;
    const to = (end ?? start + held.length) - start;
    if (to > from) host.writeUpstream(held.subarray(from, to));
    this.restartAt(start + held.length);
  }
}

export class PooledLogin implements ConnectionFront {
  readonly clientPayloads = LOGON_PAYLOAD;
  readonly held = new HeldRequests();
  /** The login Neo4j accepted for this client, to log further upstreams in with (transaction mode). */
  login: VerifiedLogin | null = null;
  readonly #host: FrontHost;
  readonly #pool: UpstreamPool;
  readonly #link: LentUpstreamLink;
  /** Called once the client is linked and its held requests are forwarded. */
  readonly #onLinked: () => void;
  #versionsAsked = false;
  /** HELLO and LOGON wait their turn here while a checkout is under way. */
  #loginSteps: BoltMessageFrame[] = [];
  #loginBusy = false;
  #hello: { readonly fields: PackStreamMap; readonly payload: Buffer | null } | null = null;
  #spec: UpstreamSpec | null = null;
  /** Bolt 5.1+: an upstream opened with this client's HELLO, held for its LOGON; not lent yet. */
  #heldForLogon: PooledUpstream | null = null;
  /** The client sent LOGOFF or LOGON itself, so the upstream's login is no longer the pool's. */
  #clientChangedLogin = false;
  /** While the pool holds this client's checkout (paused, or Neo4j unreachable): ends the hold if it leaves. */
  #leaveHold: (() => void) | null = null;
  /** Every checkout of this client's, its login's and (transaction mode) its units': told when it is held. */
  readonly checkoutOptions: CheckoutOptions = {
    onHold: (cancel) => {
      this.#leaveHold = cancel;
    },
  };

  constructor(host: FrontHost, pool: UpstreamPool, onLinked: () => void = () => {}) {
    this.#host = host;
    this.#pool = pool;
    this.#link = new LentUpstreamLink(host.upstreamEvents, () => this.#clientChangedLogin);
    this.#onLinked = onLinked;
  }

  get clientChangedLogin(): boolean {
    return this.#clientChangedLogin;
  }

  /** The pool holds this client's checkout now (the proxy is paused or Neo4j is unreachable). */
  get isHeld(): boolean {
    return this.#leaveHold !== null;
  }

  /** Asks Neo4j's versions once the offers are in, answers when they are known. */
  onHandshakeRead(progress: HandshakeProgress): boolean {
    const handshake = this.#host.handshake;
    if (handshake.clientOffers === null || handshake.serverComplete) {
      if (progress.state === 'complete') this.#handshakeDone(progress.leftover);
      return true;
    }
    if (this.#versionsAsked) return true;
    this.#versionsAsked = true;
    this.#pool.serverVersions().then(
      (versions) => this.#host.guarded(() => this.#answerHandshake(versions)),
      (error: unknown) =>
        this.#host.guarded(() =>
          this.#host.upstreamUnavailable(error instanceof Error ? error : new Error('no answer')),
        ),
    );
    return true;
  }

  holdRead(data: Buffer): void {
    const host = this.#host;
    this.held.push(data);
    host.readClient(data);
    if (host.goodbyeAt !== null && host.states.client === 'linked') host.afterGoodbye();
  }

  onClientMessage(frame: BoltMessageFrame): boolean {
    const host = this.#host;
    if (host.states.client === 'logging-in') {
      if (frame.signature === BoltSignature.GOODBYE && this.#loginSteps.length === 0 && !this.#loginBusy) {
        // Gone before its login finished (a connectivity check, say): nothing is lent yet.
        this.abandon();
        host.closeClient('client_closed');
        return true;
      }
      if (!this.#isLoginStep(frame)) return false;
      this.#loginSteps.push({ ...frame, payload: frame.payload === null ? null : Buffer.from(frame.payload) });
      this.held.skipTo(frame.wireEnd);
      this.#nextLoginStep();
      return true;
    }
    if (
      host.states.client === 'linked' &&
      (frame.signature === BoltSignature.LOGON || frame.signature === BoltSignature.LOGOFF)
    ) {
      this.#clientChangedLogin = true;
    }
    return false;
  }

  onUpstreamMessage(): void {}

  afterUpstreamRead(): void {}

  /** Session mode: the client's one upstream is gone, and the session with it. */
  unitLost(): null {
    return null;
  }

  /** An upstream held for a LOGON that never came is closed; a checkout the pool holds ends (client_left). */
  abandon(): void {
    this.#leaveHold?.();
    const held = this.#heldForLogon;
    if (held === null) return;
    this.#heldForLogon = null;
    this.#pool.release(held, { destroy: 'abandoned' });
    if (this.#host.states.upstream === 'checking-out') this.#host.states.setUpstream('unlinked');
  }

  /**
   * What the client's upstream must have been opened with: its version, capabilities and HELLO. Fixed
   * once the HELLO is in (the handshake is over by then), so worked out once, not per unit of work.
   */
  spec(): UpstreamSpec {
    if (this.#spec !== null) return this.#spec;
    const handshake = this.#host.handshake;
    const hello = this.#hello?.fields ?? new Map();
    const version = handshake.negotiatedVersion ?? { major: 0, minor: 0 };
    const capabilities = handshake.clientCapabilities ?? 0n;
    let key = settingsKey(version, capabilities, hello);
    if (!hasLogon(version)) key += `/${loginOf(hello).digest.toString('base64')}`;
    const spec = { key, version, capabilities, hello: chunkMessage(this.#hello?.payload ?? EMPTY) };
    if (this.#hello !== null) this.#spec = spec;
    return spec;
  }

  /** `upstream` is this client's now: its bytes go through the connection; it goes back to `pool` (a cluster member's). */
  lend(upstream: PooledUpstream, pool: UpstreamPool = this.#pool): void {
    this.#host.useLink(this.#link.lend(upstream, pool));
  }

  /** Neo4j refused the login: the client gets Neo4j's own FAILURE and the close, as it would directly. */
  refuse(outcome: Refused): void {
    const host = this.#host;
    host.replyToClient(outcome.refused.signature, outcome.refused.payload);
    this.#heldForLogon = null;
    if (host.states.upstream === 'checking-out') host.states.setUpstream('unlinked');
    host.closeClient('server_closed');
  }

  /** No upstream came: the pool timed out or Neo4j could not be reached; a transient error drivers retry. */
  checkoutFailed(error: unknown): void {
    const host = this.#host;
    this.abandon();
    if (host.states.upstream === 'checking-out') host.states.setUpstream('unlinked');
    if (host.closing || host.states.client === 'closed') return;
    const timedOut = error instanceof PoolTimeoutError;
    const cause = error instanceof Error ? error : new Error('checkout failed');
    const failure = failureMessage(
      {
        code: timedOut ? POOL_TIMEOUT_CODE : UPSTREAM_UNAVAILABLE_CODE,
        message: `neo4j-pool-sidecar: ${cause.message}`,
      },
      host.handshake.negotiatedVersion,
    );
    host.rejectClient(timedOut ? 'pool_timeout' : 'upstream_unavailable', cause, failure);
  }

  #answerHandshake(versions: ServerVersions | null): void {
    const host = this.#host;
    if (host.states.client !== 'handshaking' || host.closing) return;
    if (versions === null) {
      host.passThrough();
      return;
    }
    const answer = answerOffers(host.handshake.clientOffers ?? [], versions);
    const progress = host.answerHandshake(answer.bytes);
    if (progress.state === 'no-match' || answer.kind === 'none') {
      host.recordVersion();
      host.closeClient('server_closed');
      return;
    }
    const clientProgress = host.handshake.feedClient(EMPTY);
    if (clientProgress.state === 'complete') this.#handshakeDone(clientProgress.leftover);
  }

  #handshakeDone(leftover: Buffer): void {
    const host = this.#host;
    const { negotiatedVersion: version, serverVersionRanges: ranges, usedManifest } = host.handshake;
    if (version !== null && usedManifest && ranges !== null && !serverSpeaks({ ranges, capabilities: 0n }, version)) {
      throw new ConnectionProblem(
        'bad_handshake',
        `client chose Bolt ${formatBoltVersion(version)}, which Neo4j did not offer`,
      );
    }
    host.recordVersion();
    host.states.setClient('logging-in');
    this.held.restartAt(host.clientBytesRead);
    if (leftover.length > 0) this.holdRead(leftover);
  }

  /** HELLO, and LOGON on 5.1+ until the client is linked: answered by the proxy with Neo4j's verdict. */
  #isLoginStep(frame: BoltMessageFrame): boolean {
    if (frame.signature === BoltSignature.HELLO) return this.#hello === null && this.#loginSteps.length === 0;
    return frame.signature === BoltSignature.LOGON && this.#host.states.upstream !== 'linked';
  }

  /** Login steps run one at a time, in order, even while a checkout awaits Neo4j. */
  #nextLoginStep(): void {
    if (this.#loginBusy) return;
    const frame = this.#loginSteps.shift();
    if (frame === undefined) return;
    this.#loginBusy = true;
    const step = frame.signature === BoltSignature.HELLO ? this.#onHello(frame) : this.#onLogon(frame);
    step
      .catch((error: unknown) => this.#host.guarded(() => this.checkoutFailed(error)))
      .finally(() => {
        this.#loginBusy = false;
        if (this.#host.states.client === 'logging-in') this.#host.guarded(() => this.#nextLoginStep());
      });
  }

  async #onHello(frame: BoltMessageFrame): Promise<void> {
    const host = this.#host;
    const pool = this.#pool;
    host.observeClientMessage(frame);
    const fields = messageMetadata(frame.payload);
    if (fields === null) throw new ConnectionProblem('undecodable_message', 'the client sent a HELLO without metadata');
    this.#hello = { fields, payload: frame.payload };
    const spec = this.spec();
    if (!hasLogon(spec.version)) {
      host.states.setUpstream('checking-out');
      const login = loginOf(fields);
      this.login = { login, logon: null };
      this.#linkClient(await pool.checkoutForHello(spec, login, this.checkoutOptions));
      return;
    }
    const recorded = pool.recordedHello(spec.key);
    if (recorded !== null) {
      host.replyToClient(BoltSignature.SUCCESS, recorded);
      return;
    }
    host.states.setUpstream('checking-out');
    const { upstream, reply } = await pool.openWithHello(spec, this.checkoutOptions);
    if (reply.signature !== BoltSignature.SUCCESS) {
      this.refuse({ refused: reply });
      return;
    }
    if (host.states.client !== 'logging-in' || upstream === null) {
      if (upstream !== null) pool.release(upstream, { destroy: 'abandoned' });
      host.states.setUpstream('unlinked');
      if (host.states.client !== 'logging-in') return;
    }
    this.#heldForLogon = upstream;
    host.replyToClient(BoltSignature.SUCCESS, reply.payload);
  }

  async #onLogon(frame: BoltMessageFrame): Promise<void> {
    const host = this.#host;
    host.observeClientMessage(frame);
    const fields = messageMetadata(frame.payload);
    if (fields === null) throw new ConnectionProblem('undecodable_message', 'the client sent a LOGON without metadata');
    const held = this.#heldForLogon;
    this.#heldForLogon = null;
    if (host.states.upstream === 'unlinked') host.states.setUpstream('checking-out');
    const login = loginOf(fields);
    const logon = chunkMessage(frame.payload ?? EMPTY);
    this.login = { login, logon };
    this.#linkClient(await this.#pool.checkoutForLogon(this.spec(), login, logon, held, this.checkoutOptions));
  }

  /** Neo4j accepted the login: the client gets its reply, the upstream is lent, held requests go out. */
  #linkClient(outcome: Lent | Refused): void {
    const host = this.#host;
    if ('refused' in outcome) {
      this.refuse(outcome);
      return;
    }
    const { upstream, reply } = outcome;
    if (host.states.client !== 'logging-in' || host.closing) {
      // The client left while its login was checked: the upstream goes back clean.
      this.#pool.release(upstream, { pendingSummaries: 0 });
      host.states.setUpstream('released');
      return;
    }
    this.lend(upstream);
    host.replyToClient(reply.signature, reply.payload);
    host.states.setClient('linked');
    this.held.sendTo(host, host.goodbyeAt);
    if (host.goodbyeAt !== null) host.afterGoodbye();
    else this.#onLinked();
    host.closeIfDraining();
  }
}
