/**
 * Transaction mode's front: after the pooled login (pooled-login.ts), an upstream is lent for one unit
 * of work (an auto-commit query to its last summary, or BEGIN to COMMIT/ROLLBACK) and goes back to the
 * pool when the unit is over; between units the client holds none. Owns the units' bookkeeping and
 * Neo4j's FAILED state, kept per client: its upstream went back reset, so until the client's own RESET
 * the proxy answers IGNORED itself (and, as Neo4j 5.26 does, refuses BEGIN, LOGON and LOGOFF).
 *
 *   upstream: unlinked → checking-out → linked → unlinked → checking-out → ...   (one lend per unit)
 *   between units the proxy answers RESET, TELEMETRY and LOGOFF itself; anything else starts a unit
 */
import {
  type BoltMessageFrame,
  BoltSignature,
  chunkMessage,
  type HandshakeProgress,
  isSummary,
  messageMetadata,
  messagePayload,
  type PackStreamMap,
} from '../bolt/index.ts';
import type { ConnectionFront, FrontHost } from '../front.ts';
import { ConnectionProblem } from '../problems.ts';
import { failureMessage, failurePayload, UPSTREAM_UNAVAILABLE_CODE } from '../refusal.ts';
import type { ClusterRouter, RoutedLent, RoutingRefused } from '../routing/cluster-router.ts';
import { type UnitAccess, unitRoute } from '../routing/unit-route.ts';
import { loginOf } from './connection-key.ts';
import type { Lent, Refused, UpstreamPool } from './pool.ts';
import { PooledLogin } from './pooled-login.ts';
import { checkoutVerified } from './verified-checkout.ts';

/** SUCCESS {} : the proxy's own answer to RESET, TELEMETRY and LOGOFF between units of work. */
const EMPTY_SUCCESS = messagePayload(BoltSignature.SUCCESS, new Map());
/** IGNORED, the proxy's answer between units of work to a client FAILED as Neo4j sees it. */
const IGNORED = messagePayload(BoltSignature.IGNORED);
const INVALID_REQUEST_CODE = 'Neo.ClientError.Request.Invalid';
/** Requests Neo4j 5.26 answers in FAILED with a FAILURE and a closed connection (the others: IGNORED). */
const INVALID_WHEN_FAILED: ReadonlySet<number> = new Set([
  BoltSignature.BEGIN,
  BoltSignature.LOGON,
  BoltSignature.LOGOFF,
]);
const EMPTY = Buffer.alloc(0);
/** A writer's answers that say the routing table is stale: the proxy refreshes it and the client retries. */
const NOT_THE_WRITER: ReadonlyMap<string, 'not_a_leader' | 'forbidden_on_read_only'> = new Map([
  ['Neo.ClientError.Cluster.NotALeader', 'not_a_leader'],
  ['Neo.ClientError.General.ForbiddenOnReadOnlyDatabase', 'forbidden_on_read_only'],
]);

export class TransactionUnits implements ConnectionFront {
  readonly #host: FrontHost;
  readonly #pool: UpstreamPool;
  /** Cluster routing (neo4j:// upstream): each unit goes to the member its access mode calls for. */
  readonly #router: ClusterRouter | null;
  /** The member, routing table and access mode of the unit under way, when routed. */
  #unitMember: { readonly member: string; readonly tableKey: string; readonly access: UnitAccess } | null = null;
  readonly #login: PooledLogin;
  readonly clientPayloads: ReadonlySet<number>;
  /** A FAILURE in this unit left the upstream FAILED, so it needs RESET before reuse. */
  #unitFailed = false;
  /**
   * The client is FAILED as Neo4j sees it (a FAILURE with no RESET of the client's after it). The
   * upstream went back to the pool reset, so between units the proxy answers IGNORED itself until the
   * client's RESET, as Neo4j would.
   */
  #clientFailed = false;
  /** Requests the client sent in this unit, summaries Neo4j sent back, and the last RESET's place. */
  #unitRequests = 0;
  #unitSummaries = 0;
  #unitLastReset = -1;

  constructor(host: FrontHost, pool: UpstreamPool, router: ClusterRouter | null = null) {
    this.#host = host;
    this.#pool = pool;
    this.#router = router;
    this.#login = new PooledLogin(host, pool, () => this.#endUnitIfDone());
    this.clientPayloads = this.#login.clientPayloads;
  }

  /** The pool holds this client's login or next unit (paused, or Neo4j unreachable). */
  get isHeld(): boolean {
    return this.#login.isHeld;
  }

  onHandshakeRead(progress: HandshakeProgress): boolean {
    return this.#login.onHandshakeRead(progress);
  }

  holdRead(data: Buffer): void {
    this.#login.holdRead(data);
  }

  onClientMessage(frame: BoltMessageFrame): boolean {
    const host = this.#host;
    if (host.states.client !== 'linked') return this.#login.onClientMessage(frame);
    if (host.states.upstream === 'unlinked') {
      this.#onRequestBetweenUnits(frame);
      return true;
    }
    if (this.#login.onClientMessage(frame)) return true;
    this.#countUnitRequest(frame);
    return false;
  }

  /** A FAILURE to a request after the client's last RESET leaves the client FAILED. */
  onUpstreamMessage(frame: BoltMessageFrame): void {
    if (!isSummary(frame.signature)) return;
    const answers = this.#unitSummaries++;
    if (frame.signature !== BoltSignature.FAILURE) return;
    this.#unitFailed = true;
    if (answers > this.#unitLastReset) this.#clientFailed = true;
    if (this.#unitMember !== null) this.#onRoutedFailure(frame);
  }

  /**
   * A writer that is no longer one (NotALeader, or read-only): the router drops it and refreshes, and
   * the client gets a transient error in its place, which every driver's managed transaction retries
   * (NotALeader itself is a client error to a bolt:// driver). Nothing was written on that member.
   */
  #onRoutedFailure(frame: BoltMessageFrame): void {
    const unit = this.#unitMember;
    const fields = unit === null ? null : messageMetadata(frame.payload);
    const code = fields?.get('neo4j_code') ?? fields?.get('code');
    const reason = typeof code === 'string' ? NOT_THE_WRITER.get(code) : undefined;
    if (unit === null || reason === undefined || this.#router === null) return;
    this.#router.notTheWriter(unit.member, unit.tableKey, reason);
    const retry = failureMessage(
      {
        code: UPSTREAM_UNAVAILABLE_CODE,
        message: `neo4j-pool-sidecar: cluster member ${unit.member} is no longer the writer (${code}); the routing table is being refreshed, retry the transaction`,
      },
      this.#host.handshake.negotiatedVersion,
    );
    this.#host.replaceUpstreamMessage(frame, retry);
  }

  afterUpstreamRead(): void {
    this.#endUnitIfDone();
  }

  abandon(): void {
    this.#login.abandon();
  }

  /**
   * A routed read unit's member died with the unit's requests unanswered (a reader killed, say, while a
   * COMMIT was on its way). A read transaction writes nothing, so the client may run it again: it gets
   * a transient FAILURE its driver's managed transaction retries on another reader, not the bare close
   * that drivers report as a commit of unknown outcome and do not retry. The client is then FAILED as
   * after any FAILURE, until its RESET. A write's outcome is unknown: that client is closed.
   */
  unitLost(): Buffer | null {
    const unit = this.#unitMember;
    if (unit === null || unit.access !== 'read') return null;
    this.#unitMember = null;
    this.#unitFailed = false;
    this.#clientFailed = true;
    this.#unitRequests = 0;
    this.#unitSummaries = 0;
    this.#unitLastReset = -1;
    this.#login.held.restartAt(this.#host.clientBytesRead);
    return failurePayload(
      {
        code: UPSTREAM_UNAVAILABLE_CODE,
        message: `neo4j-pool-sidecar: cluster member ${unit.member} was lost during a read; nothing was written, retry the transaction`,
      },
      this.#host.handshake.negotiatedVersion,
    );
  }

  /**
   * Once the auto-commit query or explicit transaction is over and every reply is through, the upstream
   * goes back to the pool; the client keeps its connection and holds none.
   */
  #endUnitIfDone(): void {
    const host = this.#host;
    if (host.states.upstream !== 'linked' || host.states.client !== 'linked') return;
    if (!host.quiet || this.#login.clientChangedLogin) return;
    // A unit that ended without a FAILURE leaves the upstream READY: no RESET round trip needed.
    host.returnUpstream(!this.#unitFailed);
    this.#unitMember = null;
    this.#unitFailed = false;
    this.#unitRequests = 0;
    this.#unitSummaries = 0;
    this.#unitLastReset = -1;
    this.#login.held.restartAt(host.clientBytesRead);
  }

  /**
   * No upstream held: RESET, TELEMETRY and LOGOFF are answered here (nothing is in flight, so no reply
   * can overtake another); anything else starts a unit of work on a lent upstream.
   */
  #onRequestBetweenUnits(frame: BoltMessageFrame): void {
    const host = this.#host;
    const held = this.#login.held;
    const signature = frame.signature;
    if (this.#clientFailed && signature !== BoltSignature.RESET && signature !== BoltSignature.GOODBYE) {
      // FAILED as Neo4j sees it: ignored until the client's RESET, never run on a fresh upstream.
      host.observeClientMessage(frame);
      held.skipTo(frame.wireEnd);
      if (INVALID_WHEN_FAILED.has(signature)) {
        // Neo4j 5.26 refuses these in FAILED as an invalid request and closes the connection.
        const failure = failureMessage(
          {
            code: INVALID_REQUEST_CODE,
            message: `message 0x${signature.toString(16)} cannot be handled while the connection is FAILED; send RESET first`,
          },
          host.handshake.negotiatedVersion,
        );
        host.writeClient(failure);
        host.closeClient('client_error');
        return;
      }
      host.replyToClient(BoltSignature.IGNORED, IGNORED);
      return;
    }
    switch (signature) {
      case BoltSignature.GOODBYE:
        // The client's side closes once the read is through (PooledLogin.holdRead).
        return;
      case BoltSignature.RESET:
      case BoltSignature.TELEMETRY:
      case BoltSignature.LOGOFF:
        if (signature === BoltSignature.RESET) this.#clientFailed = false;
        if (signature === BoltSignature.LOGOFF) this.#login.login = null;
        host.observeClientMessage(frame);
        held.skipTo(frame.wireEnd);
        host.replyToClient(BoltSignature.SUCCESS, EMPTY_SUCCESS);
        return;
      case BoltSignature.LOGON:
        held.skipTo(frame.wireEnd);
        this.#startUnit(frame);
        return;
      case BoltSignature.ROUTE: {
        const answer = this.#answerRouteLocally(frame);
        if (answer === null) break;
        host.observeClientMessage(frame);
        held.skipTo(frame.wireEnd);
        host.replyToClient(BoltSignature.SUCCESS, messagePayload(BoltSignature.SUCCESS, answer));
        return;
      }
    }
    held.skipTo(frame.wireStart);
    if (this.#router !== null) this.#startRoutedUnit(frame, this.#router);
    else this.#startUnit(null);
    this.#countUnitRequest(frame);
    host.observeClientMessage(frame);
  }

  /** With cluster routing and a fresh table for it, the proxy's own answer to a client's ROUTE; else null. */
  #answerRouteLocally(frame: BoltMessageFrame): PackStreamMap | null {
    const verified = this.#login.login;
    if (this.#router === null || verified === null) return null;
    return this.#router.answerRoute(unitRoute(frame), verified.login, this.#host.advertisedAddress);
  }

  /** Borrows an upstream logged in as this client (or, for a LOGON, verifies the new login on it). */
  #startUnit(logonFrame: BoltMessageFrame | null): void {
    const host = this.#host;
    const pool = this.#pool;
    const spec = this.#login.spec();
    let checkout: Promise<Lent | Refused>;
    if (logonFrame !== null) {
      host.observeClientMessage(logonFrame);
      const fields = messageMetadata(logonFrame.payload);
      if (fields === null)
        throw new ConnectionProblem('undecodable_message', 'the client sent a LOGON without metadata');
      const logon = chunkMessage(logonFrame.payload ?? EMPTY);
      const login = loginOf(fields);
      this.#login.login = { login, logon };
      checkout = pool.checkoutForLogon(spec, login, logon, null, this.#login.checkoutOptions);
    } else {
      const verified = this.#login.login;
      if (verified === null) {
        // Neo4j would answer this in its AUTHENTICATION state; nothing can be borrowed for it.
        throw new ConnectionProblem('protocol_violation', 'the client sent a request without being logged in');
      }
      checkout = checkoutVerified(pool, spec, verified, this.#login.checkoutOptions);
    }
    host.states.setUpstream('checking-out');
    checkout.then(
      (outcome) => host.guarded(() => this.#lendUnit(outcome, logonFrame !== null)),
      (error: unknown) => host.guarded(() => this.#login.checkoutFailed(error)),
    );
  }

  /** Cluster routing: the unit's first message says which member (writer or a reader) and database. */
  #startRoutedUnit(frame: BoltMessageFrame, router: ClusterRouter): void {
    const host = this.#host;
    const verified = this.#login.login;
    if (verified === null) {
      throw new ConnectionProblem('protocol_violation', 'the client sent a request without being logged in');
    }
    host.states.setUpstream('checking-out');
    const route = unitRoute(frame);
    router.checkout(route, this.#login.spec(), verified, this.#login.checkoutOptions).then(
      (outcome) => host.guarded(() => this.#lendRoutedUnit(outcome, route.access)),
      (error: unknown) => host.guarded(() => this.#login.checkoutFailed(error)),
    );
  }

  #lendRoutedUnit(outcome: RoutedLent | Refused | RoutingRefused, access: UnitAccess): void {
    if ('refused' in outcome) {
      // Neo4j refused the login on that member, or the routers refused the table (no such database): its answer.
      this.#login.refuse(outcome);
      return;
    }
    this.#unitMember = { member: outcome.member, tableKey: outcome.tableKey, access };
    this.#lendUnit(outcome.lent, false, outcome.pool);
  }

  #lendUnit(outcome: Lent | Refused, answerLogon: boolean, pool: UpstreamPool = this.#pool): void {
    const host = this.#host;
    if ('refused' in outcome) {
      // Neo4j no longer takes this client's login (its password changed, say): it gets Neo4j's answer.
      this.#login.refuse(outcome);
      return;
    }
    const { upstream, reply } = outcome;
    if (host.states.client !== 'linked' || host.closing) {
      pool.release(upstream, { pendingSummaries: 0 });
      this.#unitMember = null;
      host.states.setUpstream('unlinked');
      return;
    }
    this.#login.lend(upstream, pool);
    if (answerLogon) host.replyToClient(reply.signature, reply.payload);
    this.#login.held.sendTo(host, host.goodbyeAt);
    this.#endUnitIfDone();
  }

  /** Places requests in the unit, so a FAILURE can be told to come before or after a RESET. */
  #countUnitRequest(frame: BoltMessageFrame): void {
    if (frame.signature === BoltSignature.GOODBYE) return;
    if (frame.signature === BoltSignature.RESET) {
      this.#unitLastReset = this.#unitRequests;
      this.#clientFailed = false;
    }
    this.#unitRequests++;
  }
}
