import type { BoltMessageFrame } from './chunking.ts';
import { BoltConversationError, PackStreamError } from './errors.ts';
import { isSummary } from './messages.ts';
import { readMessageMapEntries, readMessageShortString } from './packstream-decoder.ts';
import {
  asBoolean,
  asNumber,
  asString,
  isPackStreamList,
  isPackStreamMap,
  type PackStreamMap,
  type PackStreamValue,
} from './packstream-value.ts';
import { type BoltMessageLabel, BoltSignature, messageName } from './signatures.ts';

export type QueryOutcome = 'success' | 'error' | 'ignored' | 'abandoned';
export type AccessMode = 'read' | 'write';

/**
 * A query (RUN) reached its end: its final PULL/DISCARD summary with has_more false, a FAILURE or
 * IGNORED, or 'abandoned' when RESET, COMMIT, ROLLBACK or the connection's end closed it unconsumed.
 */
export interface QueryFinishedEvent {
  readonly type: 'queryFinished';
  /** From the RUN leaving the client to the summary that ended it. */
  readonly durationSeconds: number;
  readonly outcome: QueryOutcome;
  /**
   * From RUN/BEGIN extra db, else the final SUCCESS db; for a query that named none and got no such
   * SUCCESS (a FAILURE carries no db), the home database this user's queries ran on before, on this
   * connection or (through homeDatabases) another. Null: it ran on the user's home database, whose
   * name is not known yet.
   */
  readonly database: string | null;
  readonly mode: AccessMode;
  readonly errorCode: string | null;
  readonly inExplicitTransaction: boolean;
  readonly recordCount: number;
  /** The RUN's query text, when the tracker was asked for texts and could read it; else null. */
  readonly queryText: string | null;
  /** The value of the tracker's metadataKey in the transaction's tx_metadata (BEGIN, or RUN in auto-commit). */
  readonly attribution: string | null;
}

/** Any FAILURE, attributed to the request it answers. Messages are left out: they quote queries and values. */
export interface FailureEvent {
  readonly type: 'failure';
  readonly request: BoltMessageLabel;
  /** gql_status, unless it is only the generic 50N42; then neo4j_code (5.7+) or code (before). */
  readonly code: string | null;
  readonly gqlStatus: string | null;
  /** neo4j_code (5.7+) ?? code (before). */
  readonly neo4jCode: string | null;
}

export interface AuthFailureEvent {
  readonly type: 'authFailure';
  readonly request: 'HELLO' | 'LOGON';
  readonly code: string | null;
}

export type ConversationEvent = QueryFinishedEvent | FailureEvent | AuthFailureEvent;

/** Messages seen per direction and name since the last takeMessageCounts(). */
export interface MessageCounts {
  readonly client: Partial<Record<BoltMessageLabel, number>>;
  readonly server: Partial<Record<BoltMessageLabel, number>>;
}

/** A server message that carries a routing table the proxy may rewrite (see routing-table.ts). */
export type RoutingTableMessage =
  | { readonly kind: 'route-success' }
  | { readonly kind: 'procedure-record'; readonly fields: readonly string[] | null };

/** What the tracker needs of a message: its signature, and its payload when it was kept. */
export type ObservedMessage = Pick<BoltMessageFrame, 'signature' | 'payload'>;

export interface ConversationTrackerOptions {
  readonly onEvent: (event: ConversationEvent) => void;
  /** Requests awaiting a summary, and queries left open, beyond which tracking refuses; default 10,000. */
  readonly maxPendingRequests?: number;
  /** Decode each RUN's query text into its queryFinished event (for query statistics); default false. */
  readonly queryText?: boolean;
  /** A tx_metadata key whose (string or number) value goes into queryFinished events as attribution. */
  readonly metadataKey?: string | null;
  /** Home databases learnt per user, shared by the proxy's connections; without it each learns alone. */
  readonly homeDatabases?: HomeDatabaseMemory;
}

/**
 * Where a user's queries that name no database run (Neo4j resolves it per user: their home database,
 * else the server's default), by user name. Only names are held, never credentials.
 */
export interface HomeDatabaseMemory {
  get(user: string): string | undefined;
  set(user: string, database: string): void;
}

const DEFAULT_MAX_PENDING_REQUESTS = 10_000;
/** Longest string copied into an event; server-sent codes and agents are far shorter. */
const MAX_EVENT_STRING_LENGTH = 256;
/** Attribution values (task names) longer than this are cut. */
const MAX_ATTRIBUTION_LENGTH = 128;
/** A routing procedure call is a short CALL; longer query texts are not even decoded. */
const MAX_ROUTING_QUERY_BYTES = 256;
const ROUTING_PROCEDURE = /\bdbms\.(?:cluster\.)?routing\.getRoutingTable\b/i;
/** The shortest text ROUTING_PROCEDURE matches ("dbms.routing.getRoutingTable"): shorter queries are not decoded. */
const MIN_ROUTING_QUERY_BYTES = 28;

/** principal only: the credentials beside it are skipped undecoded. */
const HELLO_KEYS: ReadonlySet<string> = new Set(['user_agent', 'principal']);
const LOGON_KEYS: ReadonlySet<string> = new Set(['principal']);
const TX_KEYS: ReadonlySet<string> = new Set(['db', 'mode', 'imp_user']);
const TX_METADATA_KEYS: ReadonlySet<string> = new Set(['db', 'mode', 'imp_user', 'tx_metadata']);
const ROUTE_KEYS: ReadonlySet<string> = new Set(['db', 'imp_user']);
const ROUTE_SUCCESS_KEYS: ReadonlySet<string> = new Set(['rt']);
const STREAM_KEYS: ReadonlySet<string> = new Set(['qid']);
const SUCCESS_KEYS: ReadonlySet<string> = new Set(['has_more', 'db', 'qid', 'fields']);
const FAILURE_KEYS: ReadonlySet<string> = new Set(['gql_status', 'neo4j_code', 'code']);

const CLIENT_PAYLOADS_NEEDED: ReadonlySet<number> = new Set([
  BoltSignature.HELLO,
  BoltSignature.LOGON,
  BoltSignature.ROUTE,
  BoltSignature.RUN,
  BoltSignature.BEGIN,
  BoltSignature.PULL,
  BoltSignature.DISCARD,
]);

interface QueryState {
  readonly sequence: number;
  readonly startedAtMs: number;
  readonly transactionId: number | null;
  readonly mode: AccessMode;
  readonly isRoutingProcedure: boolean;
  readonly text: string | null;
  readonly attribution: string | null;
  /** Whom it runs as (imp_user, else the logged-in principal): whose home database a nameless query uses. */
  readonly user: string | null;
  /** The client named no database: it runs on the user's home database. */
  readonly onHomeDatabase: boolean;
  database: string | null;
  qid: number | null;
  recordCount: number;
  fields: string[] | null;
}

interface PendingRequest {
  readonly name: BoltMessageLabel;
  readonly sequence: number;
  readonly sentAtMs: number;
  /** RUN: the query it starts; PULL/DISCARD: the query it streams. */
  readonly query: QueryState | null;
  /** COMMIT/ROLLBACK: the transaction they end. */
  readonly transactionId: number | null;
  /** ROUTE naming no database: whose home database the routing table's db is. */
  readonly homeOf?: { readonly user: string | null };
}

interface Transaction {
  readonly id: number;
  readonly database: string | null;
  readonly user: string | null;
  readonly mode: AccessMode;
  readonly attribution: string | null;
}

/**
 * Follows one connection's conversation from the messages of both directions, I/O-free. Replies are
 * matched to requests through a FIFO popped once per summary (SUCCESS, FAILURE, IGNORED), which holds
 * under pipelining and RESET. Only what events need is read from payloads: query text, parameters and
 * credentials are skipped undecoded and nothing of them is kept.
 */
export class BoltConversationTracker {
  readonly #onEvent: (event: ConversationEvent) => void;
  readonly #maxPending: number;
  readonly #queryText: boolean;
  readonly #metadataKey: string | null;
  readonly #txKeys: ReadonlySet<string>;
  /** FIFO as array + head index: shift() would be O(n) per summary under deep pipelining. */
  #pending: PendingRequest[] = [];
  #pendingHead = 0;
  #sequence = 0;
  #transactionCounter = 0;
  #transaction: Transaction | null = null;
  #lastQuery: QueryState | null = null;
  #openQueries = new Set<QueryState>();
  #queriesByQid = new Map<number, QueryState>();
  #clientCounts = new Uint32Array(256);
  #serverCounts = new Uint32Array(256);
  #payloadDecodeFailures = 0;
  #clientUserAgent: string | null = null;
  /** The principal of the last HELLO (before 5.1) or LOGON; null before, after LOGOFF, or without one. */
  #user: string | null = null;
  readonly #homeDatabases: HomeDatabaseMemory | null;
  /** The home database learnt on this connection, for whom: kept even when the user has no name. */
  #home: { readonly user: string | null; readonly database: string } | null = null;

  constructor(options: ConversationTrackerOptions) {
    this.#onEvent = options.onEvent;
    this.#maxPending = options.maxPendingRequests ?? DEFAULT_MAX_PENDING_REQUESTS;
    this.#queryText = options.queryText === true;
    this.#metadataKey = options.metadataKey ?? null;
    this.#txKeys = this.#metadataKey === null ? TX_KEYS : TX_METADATA_KEYS;
    this.#homeDatabases = options.homeDatabases ?? null;
  }

  /** For the client direction's BoltDechunker: the payloads clientMessage() reads. */
  readonly keepClientPayload = (signature: number): boolean => CLIENT_PAYLOADS_NEEDED.has(signature);

  /**
   * For the server direction's BoltDechunker: summaries always; RECORDs only while a routing procedure
   * streams, since those are the ones to rewrite.
   */
  readonly keepServerPayload = (signature: number): boolean => {
    if (signature === BoltSignature.SUCCESS || signature === BoltSignature.FAILURE) return true;
    return signature === BoltSignature.RECORD && this.#streamingRoutingQuery() !== null;
  };

  get pendingRequestCount(): number {
    return this.#pending.length - this.#pendingHead;
  }

  get openQueryCount(): number {
    return this.#openQueries.size;
  }

  /** The user_agent of the client's HELLO (bounded in length), from the moment it is sent: auth may still fail. */
  get clientUserAgent(): string | null {
    return this.#clientUserAgent;
  }

  /** Between BEGIN and the COMMIT, ROLLBACK or RESET that ends it: closing now would roll the client's work back. */
  get inExplicitTransaction(): boolean {
    return this.#transaction !== null;
  }

  /**
   * Reads of kept payloads that met invalid PackStream (a payload read for two fields counts twice);
   * such a payload is treated as carrying no metadata.
   */
  get payloadDecodeFailureCount(): number {
    return this.#payloadDecodeFailures;
  }

  clientMessage(message: ObservedMessage, nowMs: number): void {
    const { signature, payload } = message;
    increment(this.#clientCounts, signature);
    switch (signature) {
      case BoltSignature.GOODBYE:
        // Answered by the server closing the connection, never by a summary.
        break;
      case BoltSignature.HELLO:
        this.#clientUserAgent = this.#helloUserAgent(payload);
        this.#user = this.#principal(payload, HELLO_KEYS);
        this.#enqueue('HELLO', nowMs, null, null);
        break;
      case BoltSignature.LOGON:
        this.#user = this.#principal(payload, LOGON_KEYS);
        this.#enqueue('LOGON', nowMs, null, null);
        break;
      case BoltSignature.LOGOFF:
        this.#user = null;
        this.#enqueue('LOGOFF', nowMs, null, null);
        break;
      case BoltSignature.ROUTE:
        this.#enqueue('ROUTE', nowMs, null, null, this.#routeForHome(payload));
        break;
      case BoltSignature.BEGIN:
        this.#beginTransaction(payload);
        this.#enqueue('BEGIN', nowMs, null, null);
        break;
      case BoltSignature.RUN:
        this.#startQuery(payload, nowMs);
        break;
      case BoltSignature.PULL:
      case BoltSignature.DISCARD:
        this.#enqueue(messageName(signature), nowMs, this.#streamTarget(payload), null);
        break;
      case BoltSignature.COMMIT:
      case BoltSignature.ROLLBACK: {
        const transactionId = this.#transaction?.id ?? null;
        this.#transaction = null;
        this.#enqueue(messageName(signature), nowMs, null, transactionId);
        break;
      }
      case BoltSignature.RESET:
        this.#transaction = null;
        this.#enqueue('RESET', nowMs, null, null);
        break;
      default:
        this.#enqueue(messageName(signature), nowMs, null, null);
    }
  }

  /**
   * Returns, before the tracker moves past it, whether this server message carries a routing table to
   * rewrite: the SUCCESS to a ROUTE, or a RECORD of a routing procedure.
   */
  serverMessage(message: ObservedMessage, nowMs: number): RoutingTableMessage | null {
    const { signature, payload } = message;
    increment(this.#serverCounts, signature);
    if (signature === BoltSignature.RECORD) return this.#onRecord(payload);
    if (!isSummary(signature)) return null;
    const request = this.#dequeue();
    if (request === null) {
      // Every request gets exactly one summary: this peer is out of step, and so is every count taken from here.
      throw new BoltConversationError('unexpected-summary', `a ${messageName(signature)} came with no request waiting`);
    }
    if (signature === BoltSignature.SUCCESS) return this.#onSuccess(request, payload, nowMs);
    if (signature === BoltSignature.FAILURE) this.#onFailure(request, payload, nowMs);
    else this.#onIgnored(request, nowMs);
    return null;
  }

  /** The connection ended: queries still open are reported abandoned. */
  close(nowMs: number): void {
    this.#abandonQueries(nowMs, () => true);
    this.#pending = [];
    this.#pendingHead = 0;
  }

  takeMessageCounts(): MessageCounts {
    return { client: drainCounts(this.#clientCounts), server: drainCounts(this.#serverCounts) };
  }

  #beginTransaction(payload: Buffer | null): void {
    const extra = this.#readMap(payload, 0, this.#txKeys);
    this.#transaction = {
      id: ++this.#transactionCounter,
      database: databaseName(extra?.get('db')),
      user: boundedString(extra?.get('imp_user')) ?? this.#user,
      mode: accessMode(extra?.get('mode')),
      attribution: this.#attribution(extra),
    };
  }

  #startQuery(payload: Buffer | null, nowMs: number): void {
    const extra = this.#readMap(payload, 2, this.#txKeys);
    const transaction = this.#transaction;
    const database = transaction !== null ? transaction.database : databaseName(extra?.get('db'));
    const user = transaction !== null ? transaction.user : (boundedString(extra?.get('imp_user')) ?? this.#user);
    const text = this.#queryText ? this.#readQueryText(payload) : null;
    const query: QueryState = {
      sequence: this.#sequence + 1,
      startedAtMs: nowMs,
      transactionId: transaction?.id ?? null,
      mode: transaction?.mode ?? accessMode(extra?.get('mode')),
      isRoutingProcedure:
        text !== null
          ? text.length <= MAX_ROUTING_QUERY_BYTES && ROUTING_PROCEDURE.test(text)
          : this.#isRoutingProcedureCall(payload),
      text,
      attribution: transaction !== null ? transaction.attribution : this.#attribution(extra),
      user,
      onHomeDatabase: database === null,
      database,
      qid: null,
      recordCount: 0,
      fields: null,
    };
    this.#boundOpenQueries();
    this.#openQueries.add(query);
    this.#lastQuery = query;
    this.#enqueue('RUN', nowMs, query, null);
  }

  #streamTarget(payload: Buffer | null): QueryState | null {
    const qid = asNumber(this.#readMap(payload, 0, STREAM_KEYS)?.get('qid'));
    if (qid === null || qid === -1) return this.#lastQuery;
    return this.#queriesByQid.get(qid) ?? null;
  }

  #onRecord(payload: Buffer | null): RoutingTableMessage | null {
    const head = this.#peek();
    const query = head?.query ?? null;
    if (query === null || (head?.name !== 'PULL' && head?.name !== 'DISCARD')) return null;
    query.recordCount++;
    if (!query.isRoutingProcedure || payload === null) return null;
    return { kind: 'procedure-record', fields: query.fields };
  }

  #onSuccess(request: PendingRequest, payload: Buffer | null, nowMs: number): RoutingTableMessage | null {
    switch (request.name) {
      case 'RUN':
        this.#onRunSuccess(request.query, this.#readMap(payload, 0, SUCCESS_KEYS));
        return null;
      case 'PULL':
      case 'DISCARD':
        this.#onStreamSuccess(request.query, this.#readMap(payload, 0, SUCCESS_KEYS), nowMs);
        return null;
      case 'COMMIT':
      case 'ROLLBACK':
        this.#endTransaction(request.transactionId, nowMs);
        return null;
      case 'RESET':
        this.#afterReset(request, nowMs);
        return null;
      case 'ROUTE':
        if (request.homeOf !== undefined) this.#learnHomeFromRoute(request.homeOf.user, payload);
        return { kind: 'route-success' };
      default:
        return null;
    }
  }

  #onRunSuccess(query: QueryState | null, metadata: PackStreamMap | null): void {
    if (query === null || metadata === null) return;
    const qid = asNumber(metadata.get('qid'));
    if (qid !== null && qid !== -1 && query.transactionId !== null && this.#openQueries.has(query)) {
      query.qid = qid;
      this.#queriesByQid.set(qid, query);
    }
    this.#learnDatabase(query, databaseName(metadata.get('db')));
    if (query.isRoutingProcedure) query.fields = stringList(metadata.get('fields'));
  }

  #onStreamSuccess(query: QueryState | null, metadata: PackStreamMap | null, nowMs: number): void {
    if (query === null || !this.#openQueries.has(query)) return;
    // has_more absent means false (Bolt 3's PULL_ALL has no such key).
    if (asBoolean(metadata?.get('has_more')) === true) return;
    this.#learnDatabase(query, databaseName(metadata?.get('db')));
    this.#finishQuery(query, 'success', null, nowMs);
  }

  #onFailure(request: PendingRequest, payload: Buffer | null, nowMs: number): void {
    const metadata = this.#readMap(payload, 0, FAILURE_KEYS);
    const gqlStatus = boundedString(metadata?.get('gql_status'));
    const neo4jCode = boundedString(metadata?.get('neo4j_code')) ?? boundedString(metadata?.get('code'));
    const code = failureCode(gqlStatus, neo4jCode);
    this.#onEvent({ type: 'failure', request: request.name, code, gqlStatus, neo4jCode });
    if (request.name === 'HELLO' || request.name === 'LOGON') {
      this.#onEvent({ type: 'authFailure', request: request.name, code });
    }
    this.#onUnsuccessful(request, 'error', code, nowMs);
  }

  #onIgnored(request: PendingRequest, nowMs: number): void {
    this.#onUnsuccessful(request, 'ignored', null, nowMs);
  }

  #onUnsuccessful(request: PendingRequest, outcome: 'error' | 'ignored', code: string | null, nowMs: number): void {
    const query = request.query;
    if (query !== null && this.#openQueries.has(query)) this.#finishQuery(query, outcome, code, nowMs);
    if (request.name === 'COMMIT' || request.name === 'ROLLBACK') {
      this.#endTransaction(request.transactionId, nowMs);
    } else if (request.name === 'RESET') {
      this.#afterReset(request, nowMs);
    }
  }

  #endTransaction(transactionId: number | null, nowMs: number): void {
    if (transactionId === null) return;
    this.#abandonQueries(nowMs, (query) => query.transactionId === transactionId);
    this.#queriesByQid.clear();
  }

  /** Everything sent before the RESET has been answered by now; what is still open was dropped. */
  #afterReset(request: PendingRequest, nowMs: number): void {
    this.#abandonQueries(nowMs, (query) => query.sequence < request.sequence);
    this.#queriesByQid.clear();
  }

  #abandonQueries(nowMs: number, selects: (query: QueryState) => boolean): void {
    for (const query of [...this.#openQueries]) {
      if (selects(query)) this.#finishQuery(query, 'abandoned', null, nowMs);
    }
  }

  #finishQuery(query: QueryState, outcome: QueryOutcome, errorCode: string | null, nowMs: number): void {
    this.#openQueries.delete(query);
    if (this.#lastQuery === query) this.#lastQuery = null;
    // A long transaction runs many queries: only open ones stay addressable by qid.
    if (query.qid !== null && this.#queriesByQid.get(query.qid) === query) this.#queriesByQid.delete(query.qid);
    this.#onEvent({
      type: 'queryFinished',
      durationSeconds: secondsBetween(query.startedAtMs, nowMs),
      outcome,
      database: query.database ?? (query.onHomeDatabase ? this.#homeDatabaseOf(query.user) : null),
      mode: query.mode,
      errorCode,
      inExplicitTransaction: query.transactionId !== null,
      recordCount: query.recordCount,
      queryText: query.text,
      attribution: query.attribution,
    });
  }

  #streamingRoutingQuery(): QueryState | null {
    const head = this.#peek();
    const query = head?.query;
    return query?.isRoutingProcedure === true && head?.name === 'PULL' ? query : null;
  }

  #enqueue(
    name: BoltMessageLabel,
    nowMs: number,
    query: QueryState | null,
    transactionId: number | null,
    homeOf?: PendingRequest['homeOf'],
  ): void {
    if (this.pendingRequestCount >= this.#maxPending) {
      throw new BoltConversationError(
        'too-many-pending-requests',
        `more than ${this.#maxPending} requests awaiting a reply`,
      );
    }
    this.#pending.push({
      name,
      sequence: ++this.#sequence,
      sentAtMs: nowMs,
      query,
      transactionId,
      ...(homeOf === undefined ? {} : { homeOf }),
    });
  }

  #boundOpenQueries(): void {
    if (this.#openQueries.size >= this.#maxPending) {
      throw new BoltConversationError('too-many-pending-requests', `more than ${this.#maxPending} open queries`);
    }
  }

  #peek(): PendingRequest | null {
    return this.#pending[this.#pendingHead] ?? null;
  }

  #dequeue(): PendingRequest | null {
    const request = this.#pending[this.#pendingHead];
    if (request === undefined) return null;
    this.#pendingHead++;
    if (this.#pendingHead === this.#pending.length) {
      this.#pending = [];
      this.#pendingHead = 0;
    } else if (this.#pendingHead >= 1024 && this.#pendingHead * 2 >= this.#pending.length) {
      this.#pending = this.#pending.slice(this.#pendingHead);
      this.#pendingHead = 0;
    }
    return request;
  }

  #helloUserAgent(payload: Buffer | null): string | null {
    if (payload === null) return null;
    // Bolt 1-2 INIT carries the agent as a plain string; HELLO in its extra map (next to the credentials
    // before 5.1, which readMap skips without decoding).
    const agent = this.#guard(() => readMessageShortString(payload, 0, MAX_EVENT_STRING_LENGTH));
    return agent ?? boundedString(this.#readMap(payload, 0, HELLO_KEYS)?.get('user_agent'));
  }

  #principal(payload: Buffer | null, keys: ReadonlySet<string>): string | null {
    return boundedString(this.#readMap(payload, 0, keys)?.get('principal'));
  }

  /** A ROUTE naming no database asks for the user's home one: its reply names it (4.4+ extra, 4.3 a plain string). */
  #routeForHome(payload: Buffer | null): PendingRequest['homeOf'] {
    if (payload === null) return undefined;
    const extra = this.#readMap(payload, 2, ROUTE_KEYS);
    const named =
      extra !== null
        ? databaseName(extra.get('db'))
        : databaseName(this.#guard(() => readMessageShortString(payload, 2, MAX_EVENT_STRING_LENGTH)));
    if (named !== null) return undefined;
    return { user: boundedString(extra?.get('imp_user')) ?? this.#user };
  }

  #learnHomeFromRoute(user: string | null, payload: Buffer | null): void {
    const table = this.#readMap(payload, 0, ROUTE_SUCCESS_KEYS)?.get('rt');
    const database = isPackStreamMap(table) ? databaseName(table.get('db')) : null;
    if (database !== null) this.#learnHome(user, database);
  }

  /** A SUCCESS named the database a query ran on; for a query that named none, that is its user's home. */
  #learnDatabase(query: QueryState, database: string | null): void {
    if (database === null) return;
    query.database = database;
    if (query.onHomeDatabase) this.#learnHome(query.user, database);
  }

  #learnHome(user: string | null, database: string): void {
    this.#home = { user, database };
    if (user !== null) this.#homeDatabases?.set(user, database);
  }

  #homeDatabaseOf(user: string | null): string | null {
    if (this.#home !== null && this.#home.user === user) return this.#home.database;
    return user === null ? null : (this.#homeDatabases?.get(user) ?? null);
  }

  #readQueryText(payload: Buffer | null): string | null {
    if (payload === null) return null;
    return this.#guard(() => readMessageShortString(payload, 0, Number.MAX_SAFE_INTEGER));
  }

  /** Only short strings and numbers: a value is a label-like name (a task), never a document. */
  #attribution(extra: PackStreamMap | null): string | null {
    if (this.#metadataKey === null || extra === null) return null;
    const metadata = extra.get('tx_metadata');
    if (metadata === undefined || !isPackStreamMap(metadata)) return null;
    const value = metadata.get(this.#metadataKey);
    if (typeof value === 'string') return value.slice(0, MAX_ATTRIBUTION_LENGTH);
    if (typeof value === 'number' || typeof value === 'bigint') return String(value);
    return null;
  }

  #isRoutingProcedureCall(payload: Buffer | null): boolean {
    if (payload === null) return false;
    const text = this.#guard(() =>
      readMessageShortString(payload, 0, MAX_ROUTING_QUERY_BYTES, MIN_ROUTING_QUERY_BYTES),
    );
    return text !== null && ROUTING_PROCEDURE.test(text);
  }

  #readMap(payload: Buffer | null, fieldIndex: number, keys: ReadonlySet<string>): PackStreamMap | null {
    if (payload === null) return null;
    return this.#guard(() => readMessageMapEntries(payload, fieldIndex, keys));
  }

  /** Garbage in one payload must not stop the tracking of the rest of the conversation. */
  #guard<T>(read: () => T | null): T | null {
    try {
      return read();
    } catch (error) {
      this.#countUndecodable(error);
      return null;
    }
  }

  #countUndecodable(error: unknown): void {
    if (!(error instanceof PackStreamError)) throw error;
    this.#payloadDecodeFailures++;
  }
}

function increment(counts: Uint32Array, signature: number): void {
  const index = signature & 0xff;
  counts[index] = (counts[index] ?? 0) + 1;
}

/**
 * Neo4j 5.26 over Bolt 5.8 answers a syntax error and a wrong password alike with gql_status 50N42
 * ("general processing exception") and puts the specific code in neo4j_code only; keying on that
 * gql_status would fold every error into one value.
 */
const GENERIC_GQL_STATUSES: ReadonlySet<string> = new Set(['50N42']);

function failureCode(gqlStatus: string | null, neo4jCode: string | null): string | null {
  if (gqlStatus !== null && !GENERIC_GQL_STATUSES.has(gqlStatus)) return gqlStatus;
  return neo4jCode ?? gqlStatus;
}

function drainCounts(counts: Uint32Array): Partial<Record<BoltMessageLabel, number>> {
  const drained: Partial<Record<BoltMessageLabel, number>> = {};
  for (let signature = 0; signature < counts.length; signature++) {
    const count = counts[signature] as number;
    if (count === 0) continue;
    const name = messageName(signature);
    drained[name] = (drained[name] ?? 0) + count;
    counts[signature] = 0;
  }
  return drained;
}

/** Mode 'r' is read; anything else, including absent, is write (the Bolt default). */
function accessMode(value: PackStreamValue | undefined): AccessMode {
  return value === 'r' ? 'read' : 'write';
}

/** "" and null both mean the server's default database. */
function databaseName(value: PackStreamValue | undefined): string | null {
  const name = boundedString(value);
  return name === '' ? null : name;
}

function boundedString(value: PackStreamValue | undefined): string | null {
  return typeof value === 'string' ? value.slice(0, MAX_EVENT_STRING_LENGTH) : null;
}

function stringList(value: PackStreamValue | undefined): string[] | null {
  if (!isPackStreamList(value)) return null;
  return value.map((item) => asString(item) ?? '');
}

function secondsBetween(startMs: number, endMs: number): number {
  return Math.max(0, endMs - startMs) / 1000;
}
