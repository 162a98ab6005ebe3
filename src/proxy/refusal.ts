/**
 * Saying no in Bolt. A bare close reaches the application as "connection closed by server", which
 * reads like a network fault; instead the proxy answers the handshake itself with a version both
 * sides know, waits for the client's HELLO and replies with a FAILURE whose message says why, then
 * closes. Drivers surface that message and, the code being a TransientError, retry with back-off.
 */
import type net from 'node:net';
import {
  BoltDechunker,
  BoltHandshake,
  BoltSignature,
  type BoltVersion,
  type BoltVersionOffer,
  chunkMessage,
  messagePayload,
  type PackStreamMap,
  type PackStreamValue,
} from './bolt/index.ts';

export interface RefusalFailure {
  /** A Neo4j status code; TransientError ones make drivers retry. */
  readonly code: string;
  readonly message: string;
}

/** Neo4j's own code for "too busy to take this request now": drivers retry it. */
export const CONNECTION_LIMIT_CODE = 'Neo.TransientError.Request.NoThreadsAvailable';
export const UPSTREAM_UNAVAILABLE_CODE = 'Neo.TransientError.General.DatabaseUnavailable';
/** Neo4j's own code for a transaction it timed out: what proxy.idleTransactionTimeoutMs answers. */
export const IDLE_TRANSACTION_TIMEOUT_CODE = 'Neo.ClientError.Transaction.TransactionTimedOut';
/** Every pooled Neo4j connection stayed busy for proxy.pooling.acquireTimeoutMs: busy, so retried. */
export const POOL_TIMEOUT_CODE = CONNECTION_LIMIT_CODE;

const NO_VERSION = Buffer.alloc(4);
const EMPTY = Buffer.alloc(0);

/**
 * Versions where HELLO carries the credentials and is answered before anything else is sent: a FAILURE
 * to it is what a wrong password looks like, which every driver reports with the code and message. From
 * 5.1 a LOGON is pipelined behind HELLO and some drivers then report only a protocol error. A client
 * that offers none of these (a future manifest-only driver) gets a plain close.
 */
function refusableVersion(major: number, minor: number): boolean {
  if (major === 5) return minor === 0;
  if (major === 4) return minor <= 4;
  return major === 3 && minor === 0;
}

/** The first version in the client's preference order that the refusal can speak. */
export function chooseRefusalVersion(offers: readonly BoltVersionOffer[]): BoltVersion | null {
  for (const offer of offers) {
    if (offer.kind !== 'versions') continue;
    const { major, maxMinor, minMinor } = offer.range;
    for (let minor = maxMinor; minor >= minMinor; minor--) {
      if (refusableVersion(major, minor)) return { major, minor };
    }
  }
  return null;
}

/**
 * A FAILURE as Neo4j words it for `version`: `code` before Bolt 5.7; from 5.7 the GQL form (neo4j_code,
 * gql_status, description, diagnostic_record), the only one 5.7+ drivers read the code from.
 */
export function failureMessage(failure: RefusalFailure, version: BoltVersion | null = null): Buffer {
  return chunkMessage(failurePayload(failure, version));
}

/** failureMessage's payload, not chunked: for a reply the connection observes as one from Neo4j. */
export function failurePayload(failure: RefusalFailure, version: BoltVersion | null = null): Buffer {
  const gql = version !== null && (version.major > 5 || (version.major === 5 && version.minor >= 7));
  const metadata: PackStreamMap = gql
    ? new Map<string, PackStreamValue>([
        ['neo4j_code', failure.code],
        ['message', failure.message],
        ['gql_status', GENERAL_GQL_STATUS],
        ['description', `error: general processing exception - unexpected error. ${failure.message}`],
        [
          'diagnostic_record',
          new Map<string, PackStreamValue>([
            ['OPERATION', ''],
            ['OPERATION_CODE', '0'],
            ['CURRENT_SCHEMA', '/'],
          ]),
        ],
      ])
    : new Map<string, PackStreamValue>([
        ['code', failure.code],
        ['message', failure.message],
      ]);
  return messagePayload(BoltSignature.FAILURE, metadata);
}

/** GQL's "general processing exception", which Neo4j sends with codes that have no GQL status of their own. */
const GENERAL_GQL_STATUS = '50N42';

/**
 * Feeds on one client socket's bytes until the FAILURE is written; codec errors (a client that is
 * not speaking Bolt at all) propagate to the caller, which then just closes the socket.
 */
export class BoltRefusal {
  readonly #socket: net.Socket;
  readonly #failure: RefusalFailure;
  readonly #handshake = new BoltHandshake();
  #messages: BoltDechunker | null = null;
  #finished = false;

  constructor(socket: net.Socket, failure: RefusalFailure) {
    this.#socket = socket;
    this.#failure = failure;
  }

  /** A refusal that first reads what the client already sent; a client not speaking Bolt is just closed. */
  static replaying(socket: net.Socket, failure: RefusalFailure, received: readonly Buffer[]): BoltRefusal {
    const refusal = new BoltRefusal(socket, failure);
    try {
      for (const data of received) refusal.feed(data);
    } catch {
      socket.destroy();
    }
    return refusal;
  }

  get finished(): boolean {
    return this.#finished;
  }

  feed(data: Buffer): void {
    if (this.#finished) return;
    if (this.#messages !== null) {
      this.#messages.feed(data);
      return;
    }
    this.#handshake.feedClient(data);
    const offers = this.#handshake.clientOffers;
    if (offers === null) return;
    const version = chooseRefusalVersion(offers);
    if (version === null) {
      this.#finish(NO_VERSION);
      return;
    }
    const answer = Buffer.from([0, 0, version.minor, version.major]);
    this.#socket.write(answer);
    this.#handshake.feedServer(answer);
    this.#messages = new BoltDechunker({ onMessage: () => this.#finish(failureMessage(this.#failure)) });
    // Whatever the client sent past its offers was held until the answer said what it is.
    const progress = this.#handshake.feedClient(EMPTY);
    if (progress.state === 'complete' && progress.leftover.length > 0) this.#messages.feed(progress.leftover);
  }

  #finish(lastBytes: Buffer): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#socket.end(lastBytes);
  }
}
