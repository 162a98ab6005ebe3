/**
 * What a client connection delegates to the way it was told to meet its clients, chosen once by the
 * listener when the connection is built (pgbouncer's client.c / server.c split): the `ConnectionFront`
 * a connection calls at its few decision points, and the `FrontHost` the front calls back through. The
 * pass-through front here forwards everything (pooling off); pool/pooled-login.ts answers the handshake
 * and the login from the pool (session mode), pool/transaction-units.ts lends an upstream per unit of
 * work on top of that (transaction mode).
 */
import type { BoltHandshake, BoltMessageFrame, HandshakeProgress, ServerHandshakeProgress } from './bolt/index.ts';
import type { ConnectionStates } from './connection-states.ts';
import type { CloseReason } from './metrics.ts';
import type { ConnectionProblemReason } from './problems.ts';
import type { UpstreamEvents, UpstreamLink } from './upstream-link.ts';

/** The connection, as a front sees it. */
export interface FrontHost {
  readonly handshake: BoltHandshake;
  /** The client's and the upstream link's states; fronts move them as their login and units go. */
  readonly states: ConnectionStates;
  /** A close reason is set: the connection is on its way out. */
  readonly closing: boolean;
  /** host:port the proxy writes into routing tables for its clients. */
  readonly advertisedAddress: string;
  /** Client stream offset of its GOODBYE (null: none yet); nothing from there on goes upstream. */
  readonly goodbyeAt: number | null;
  /** Client message-stream bytes read so far (offsets of held bytes count from here). */
  readonly clientBytesRead: number;
  /** Nothing in flight: no request unanswered, no query or transaction open, no message half-read or held. */
  readonly quiet: boolean;
  /** Callbacks for the lent upstream's bytes and close, the same object for every lend. */
  readonly upstreamEvents: UpstreamEvents;
  /** Client message bytes read but not forwarded (held by the front). */
  readClient(data: Buffer): void;
  observeClientMessage(frame: BoltMessageFrame): void;
  /** A reply the proxy gives itself, observed like one Neo4j sent. */
  replyToClient(signature: number, payload: Buffer): void;
  writeClient(data: Buffer): void;
  /** Sends `message` (chunked) to the client in place of this message from Neo4j (cluster routing's retryable errors). */
  replaceUpstreamMessage(frame: BoltMessageFrame, message: Buffer): void;
  writeUpstream(data: Buffer): void;
  /** Answers the client's handshake as Neo4j would (the client's held handshake bytes are dropped). */
  answerHandshake(answer: Buffer): ServerHandshakeProgress;
  /** Records the negotiated version once the handshake has an outcome. */
  recordVersion(): void;
  /** From here on bytes go through `link`. */
  useLink(link: UpstreamLink): void;
  /** Transaction mode: the unit of work is over, the upstream goes back (`ready`: READY, no RESET needed). */
  returnUpstream(ready: boolean): void;
  /** Neo4j cannot be answered for (it predates the manifest handshake): the client gets an upstream of its own. */
  passThrough(): void;
  /** Ends the client's side with `reason` (unless one is set already). */
  closeClient(reason: CloseReason): void;
  /** The proxy turns the client away: `failure` is sent, the reason counted and logged, the client ended. */
  rejectClient(reason: ConnectionProblemReason, cause: Error, failure: Buffer): void;
  /** Neo4j could not be reached: told in Bolt if the handshake is still unanswered. */
  upstreamUnavailable(error: Error): void;
  /** The client said GOODBYE: its side is closed and the upstream returned. */
  afterGoodbye(): void;
  /** During shutdown, closes the connection if nothing is in flight. */
  closeIfDraining(): void;
  /** Runs `work` as the connection runs its socket events: a thrown problem closes this connection only. */
  guarded(work: () => void): void;
}

/** The decision points a connection hands its front. Every method is called on the connection's own turn. */
export interface ConnectionFront {
  /** Client messages whose payload the front reads (LOGON for a pooled login). */
  readonly clientPayloads: ReadonlySet<number>;
  /** A client handshake read, already fed to the handshake; false: it goes to Neo4j (pass-through). */
  onHandshakeRead(progress: HandshakeProgress): boolean;
  /** A read while the client holds no upstream (logging in, or between units of work). */
  holdRead(data: Buffer): void;
  /** Each client message before the connection observes it; true: the front answered or holds it. */
  onClientMessage(frame: BoltMessageFrame): boolean;
  /** Each message from Neo4j, before the connection observes it. */
  onUpstreamMessage(frame: BoltMessageFrame): void;
  /** After each read from Neo4j is forwarded. */
  afterUpstreamRead(): void;
  /** The connection is being cut off: an upstream held for a login goes back. */
  abandon(): void;
  /**
   * The lent upstream died with requests of the unit unanswered, between two of its messages. The
   * FAILURE payload to answer the first with (IGNORED for the rest) when the client may keep its
   * connection and retry; null: the client is closed, as Neo4j's close would leave it.
   */
  unitLost(): Buffer | null;
}

const NOTHING: ReadonlySet<number> = new Set();

/** Pooling off: every byte goes to an upstream opened for this client, the proxy only reads along. */
export const PASS_THROUGH: ConnectionFront = {
  clientPayloads: NOTHING,
  onHandshakeRead: () => false,
  holdRead: () => {},
  onClientMessage: () => false,
  onUpstreamMessage: () => {},
  afterUpstreamRead: () => {},
  abandon: () => {},
  unitLost: () => null,
};

/** Builds a connection's front once it exists; the listener picks one per pooling mode. */
export type FrontFactory = (host: FrontHost) => ConnectionFront;
