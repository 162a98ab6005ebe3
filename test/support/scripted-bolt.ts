/**
 * Scripted Bolt servers for the cluster tests, standing in for what Neo4j Community cannot be: a
 * cluster's router and a follower. One skeleton (ScriptedBoltServer) owns each connection's state
 * machine the way Neo4j 5.26 walks it: handshake (manifest v1 or plain offers), HELLO, LOGON from
 * Bolt 5.1 or credentials in HELLO before, RESET, GOODBYE, TELEMETRY, LOGOFF, and IGNORED after a
 * FAILURE until RESET. What a logged-in connection is asked is left to a role: the router answers
 * ROUTE from a table the test sets; the not-a-leader member refuses writes with NotALeader and answers
 * reads with a record naming it. Requests may arrive pipelined and split anywhere; bytes that are not
 * Bolt close that one connection. The codec is the project's own (src/proxy/bolt).
 */
import net from 'node:net';
import {
  BoltDechunker,
  BoltHandshake,
  BoltSignature,
  type BoltVersion,
  type BoltVersionRange,
  chunkMessage,
  decodeBoltMessage,
  encodePackStream,
  ignoredMessage,
  messageName,
  type PackStreamMap,
  PackStreamStruct,
  type PackStreamValue,
  successMessage,
} from '../../src/proxy/bolt/index.ts';
import { answerOffers, serverSpeaks } from '../../src/proxy/pool/server-versions.ts';
import { failureMessage } from '../../src/proxy/refusal.ts';
import { map } from './raw-bolt.ts';

/** What Neo4j 5.26 announces: 5.0-5.4 and 5.6-5.8 (never 5.5), and 4.4. */
export const NEO4J_5_26_VERSIONS: readonly BoltVersionRange[] = [
  { major: 5, minMinor: 6, maxMinor: 8 },
  { major: 5, minMinor: 0, maxMinor: 4 },
  { major: 4, minMinor: 4, maxMinor: 4 },
];

export const UNAUTHORIZED_CODE = 'Neo.ClientError.Security.Unauthorized';
export const NOT_A_LEADER_CODE = 'Neo.ClientError.Cluster.NotALeader';
export const INVALID_REQUEST_CODE = 'Neo.ClientError.Request.Invalid';
/** The database a ROUTE without one (the home database) resolves to, unless the table says otherwise. */
export const DEFAULT_HOME_DATABASE = 'neo4j';

/** A decoded request, as a role sees it. */
export interface ScriptedRequest {
  readonly signature: number;
  readonly fields: readonly PackStreamValue[];
}

/** What a role may answer one request with; every request gets exactly one summary. */
export interface ScriptedReplies {
  readonly version: BoltVersion;
  record(values: PackStreamValue[]): void;
  success(metadata?: PackStreamMap): void;
  /** Puts the connection in the failed state: IGNORED until RESET. */
  failure(code: string, message: string): void;
  /** Ends the connection with this request unanswered, as a server killed then (earlier answers go out first). */
  drop(): void;
}

/** A role's answer to the requests of one logged-in connection; anything it does not know gets a FAILURE. */
export interface ScriptedRole {
  answer(request: ScriptedRequest, replies: ScriptedReplies): void;
  /** RESET (and LOGOFF) end what was open: a transaction, a result. */
  reset(): void;
}

export interface ScriptedLogin {
  readonly username: string;
  readonly password: string;
}

export interface ScriptedServerOptions extends ScriptedLogin {
  /** Port on 127.0.0.1; 0 (default) picks a free one. Pass a closed server's port to bring it back there. */
  readonly port?: number;
  /** Versions offered; default NEO4J_5_26_VERSIONS. */
  readonly versions?: readonly BoltVersionRange[];
}

export interface ConnectionCounts {
  /** Connections accepted since the start. */
  readonly opened: number;
  /** Connections open now. */
  readonly open: number;
}

/** Bolt 5.1 moved the credentials from HELLO into LOGON. */
function hasLogon(version: BoltVersion): boolean {
  return version.major > 5 || (version.major === 5 && version.minor >= 1);
}

/** Requests are a few hundred bytes; a bound keeps a hostile peer from making the test allocate. */
const MAX_REQUEST_BYTES = 1024 * 1024;
const EMPTY = Buffer.alloc(0);

type ConnectionState = 'negotiating' | 'awaiting-hello' | 'awaiting-logon' | 'ready' | 'failed' | 'closed';

/** One client's connection: the login state machine, then its role's answers. */
class ScriptedConnection {
  readonly #socket: net.Socket;
  readonly #login: ScriptedLogin;
  readonly #versions: readonly BoltVersionRange[];
  readonly #role: ScriptedRole;
  readonly #connectionId: string;
  readonly #handshake = new BoltHandshake();
  #dechunker: BoltDechunker | null = null;
  #state: ConnectionState = 'negotiating';
  #version: BoltVersion = { major: 0, minor: 0 };
  /** Replies to one read's requests go out in one write, as pipelined requests are answered. */
  #outgoing: Buffer[] = [];

  constructor(
    socket: net.Socket,
    options: { login: ScriptedLogin; versions: readonly BoltVersionRange[]; role: ScriptedRole; connectionId: string },
  ) {
    this.#socket = socket;
    this.#login = options.login;
    this.#versions = options.versions;
    this.#role = options.role;
    this.#connectionId = options.connectionId;
    socket.setNoDelay(true);
    socket.on('data', (data: Buffer) => this.#receive(data));
    socket.on('error', () => this.drop());
    socket.on('close', () => {
      this.#state = 'closed';
    });
  }

  /** Drops the connection at once, as a crashed server would. */
  drop(): void {
    this.#state = 'closed';
    this.#socket.destroy();
  }

  #receive(data: Buffer): void {
    try {
      if (this.#dechunker !== null) this.#dechunker.feed(data);
      else this.#negotiate(data);
    } catch {
      // Not Bolt, or not Bolt this server can read: this connection ends, nothing else does.
      this.#outgoing = [];
      this.#close();
      return;
    }
    this.#flush();
  }

  #negotiate(data: Buffer): void {
    let progress = this.#handshake.feedClient(data);
    const offers = this.#handshake.clientOffers;
    if (offers === null) return;
    if (!this.#handshake.serverComplete) {
      const answer = answerOffers(offers, { ranges: this.#versions, capabilities: 0n });
      this.#outgoing.push(answer.bytes);
      if (answer.kind === 'none') {
        this.#flush();
        this.#close();
        return;
      }
      this.#handshake.feedServer(answer.bytes);
      progress = this.#handshake.feedClient(EMPTY);
    }
    if (progress.state !== 'complete') return;
    const version = this.#handshake.negotiatedVersion;
    if (version === null || !serverSpeaks({ ranges: this.#versions, capabilities: 0n }, version)) {
      throw new Error('the client chose a version this server did not announce');
    }
    this.#version = version;
    this.#state = 'awaiting-hello';
    this.#dechunker = new BoltDechunker({
      keepPayload: () => true,
      maxPayloadBytes: MAX_REQUEST_BYTES,
      onMessage: (frame) => {
        const request = decodeBoltMessage(frame.payload ?? EMPTY);
        this.#answer({ signature: request.signature, fields: request.fields });
      },
    });
    if (progress.leftover.length > 0) this.#dechunker.feed(progress.leftover);
  }

  #answer(request: ScriptedRequest): void {
    if (this.#state === 'closed') return;
    if (request.signature === BoltSignature.GOODBYE) {
      this.#flush();
      this.#close();
      return;
    }
    switch (this.#state) {
      case 'awaiting-hello':
        this.#hello(request);
        return;
      case 'awaiting-logon':
        if (request.signature !== BoltSignature.LOGON) {
          this.#fatal(INVALID_REQUEST_CODE, `${messageName(request.signature)} before LOGON`);
          return;
        }
        this.#logon(metadataOf(request, 0));
        return;
      case 'failed':
        if (request.signature === BoltSignature.RESET) this.#reset();
        else this.#outgoing.push(ignoredMessage());
        return;
      default:
        this.#ready(request);
    }
  }

  #hello(request: ScriptedRequest): void {
    if (request.signature !== BoltSignature.HELLO) {
      this.#fatal(INVALID_REQUEST_CODE, `${messageName(request.signature)} before HELLO`);
      return;
    }
    const extra = metadataOf(request, 0);
    if (hasLogon(this.#version)) {
      this.#outgoing.push(this.#helloSuccess());
      this.#state = 'awaiting-logon';
    } else if (this.#authenticates(extra)) {
      this.#outgoing.push(this.#helloSuccess());
      this.#state = 'ready';
    } else {
      this.#fatal(UNAUTHORIZED_CODE, 'The client is unauthorized due to authentication failure.');
    }
  }

  #helloSuccess(): Buffer {
    // Neo4j 5.26 announces server-side routing (dbms.routing.enabled, on by default) from Bolt 5.8; the
    // 5.28 drivers then cache the home database instead of sending a ROUTE for every session.
    const version = this.#version;
    const hints: Record<string, PackStreamValue> =
      version.major > 5 || (version.major === 5 && version.minor >= 8) ? { 'ssr.enabled': true } : {};
    return successMessage(map({ server: 'Neo4j/5.26.0', connection_id: this.#connectionId, hints: map(hints) }));
  }

  #logon(auth: PackStreamMap): void {
    if (!this.#authenticates(auth)) {
      this.#fatal(UNAUTHORIZED_CODE, 'The client is unauthorized due to authentication failure.');
      return;
    }
    this.#outgoing.push(successMessage());
    this.#state = 'ready';
  }

  #authenticates(auth: PackStreamMap): boolean {
    return (
      auth.get('scheme') === 'basic' &&
      auth.get('principal') === this.#login.username &&
      auth.get('credentials') === this.#login.password
    );
  }

  #ready(request: ScriptedRequest): void {
    switch (request.signature) {
      case BoltSignature.RESET:
        this.#reset();
        return;
      case BoltSignature.TELEMETRY:
        this.#outgoing.push(successMessage());
        return;
      case BoltSignature.LOGOFF:
        if (!hasLogon(this.#version)) break;
        this.#role.reset();
        this.#outgoing.push(successMessage());
        this.#state = 'awaiting-logon';
        return;
      case BoltSignature.HELLO:
      case BoltSignature.LOGON:
        this.#fail(INVALID_REQUEST_CODE, `${messageName(request.signature)} on a connection already logged in`);
        return;
    }
    this.#role.answer(request, this.#replies());
  }

  #replies(): ScriptedReplies {
    return {
      version: this.#version,
      record: (values) => {
        this.#outgoing.push(chunkMessage(encodePackStream(new PackStreamStruct(BoltSignature.RECORD, [values]))));
      },
      success: (metadata) => this.#outgoing.push(successMessage(metadata)),
      failure: (code, message) => this.#fail(code, message),
      drop: () => {
        this.#flush();
        this.drop();
      },
    };
  }

  #reset(): void {
    this.#role.reset();
    this.#outgoing.push(successMessage());
    this.#state = 'ready';
  }

  #fail(code: string, message: string): void {
    this.#outgoing.push(failureMessage({ code, message }, this.#version));
    this.#state = 'failed';
  }

  /** A FAILURE to HELLO or LOGON ends the connection, as Neo4j ends it. */
  #fatal(code: string, message: string): void {
    this.#outgoing.push(failureMessage({ code, message }, this.#version));
    this.#flush();
    this.#close();
  }

  #flush(): void {
    if (this.#outgoing.length === 0 || this.#socket.destroyed) return;
    this.#socket.write(this.#outgoing.length === 1 ? (this.#outgoing[0] as Buffer) : Buffer.concat(this.#outgoing));
    this.#outgoing = [];
  }

  #close(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    // What was answered (a FAILURE, say) is written first, then the connection ends.
    this.#socket.destroySoon();
  }
}

/** The field at `index` when it is a map, else an empty map (a missing extra means defaults). */
function metadataOf(request: ScriptedRequest, index: number): PackStreamMap {
  const field = request.fields[index];
  return field instanceof Map ? (field as PackStreamMap) : new Map();
}

/** A listening scripted server: accepts connections and gives each a fresh role. */
export class ScriptedBoltServer {
  readonly #server: net.Server;
  readonly #connections = new Set<ScriptedConnection>();
  #opened = 0;

  private constructor(options: ScriptedServerOptions, newRole: () => ScriptedRole) {
    const login = { username: options.username, password: options.password };
    const versions = options.versions ?? NEO4J_5_26_VERSIONS;
    this.#server = net.createServer((socket) => {
      this.#opened++;
      const connection = new ScriptedConnection(socket, {
        login,
        versions,
        role: newRole(),
        connectionId: `bolt-${this.#opened}`,
      });
      this.#connections.add(connection);
      socket.once('close', () => this.#connections.delete(connection));
    });
  }

  static async listen(options: ScriptedServerOptions, newRole: () => ScriptedRole): Promise<ScriptedBoltServer> {
    const scripted = new ScriptedBoltServer(options, newRole);
    await new Promise<void>((resolve, reject) => {
      scripted.#server.once('error', reject);
      scripted.#server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
    });
    return scripted;
  }

  /** host:port, as routing tables name members. */
  get address(): string {
    const { port } = this.#server.address() as net.AddressInfo;
    return `127.0.0.1:${port}`;
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  get connections(): ConnectionCounts {
    return { opened: this.#opened, open: this.#connections.size };
  }

  /** Stops listening and drops every connection, as a crashed server would. */
  async close(): Promise<void> {
    for (const connection of this.#connections) connection.drop();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** A routing table as the test writes it; members are named host:port. */
export interface ScriptedRoutingTable {
  readonly ttlSeconds: number;
  readonly routers: readonly string[];
  readonly writers: readonly string[];
  readonly readers: readonly string[];
  /** What a ROUTE for the home database (no db named) resolves to; default DEFAULT_HOME_DATABASE. */
  readonly db?: string;
}

export interface RouteRequestCounts {
  readonly total: number;
  /** ROUTEs naming no database: the home database. */
  readonly home: number;
  /** ROUTEs naming a database, by name. */
  readonly byDatabase: Readonly<Record<string, number>>;
}

export interface ScriptedRouter {
  /** 127.0.0.1:<port> */
  readonly address: string;
  /** neo4j://127.0.0.1:<port>, the upstream URI of a routing proxy. */
  readonly uri: string;
  readonly port: number;
  /** From the next ROUTE on, every ROUTE gets this table (a queue set before is dropped). */
  setTable(table: ScriptedRoutingTable): void;
  /** The next ROUTEs get these tables one each, in turn; the last one then answers every ROUTE after. */
  queueTables(tables: readonly ScriptedRoutingTable[]): void;
  /** ROUTE requests answered so far (a snapshot). */
  readonly routeRequests: RouteRequestCounts;
  readonly connections: ConnectionCounts;
  close(): Promise<void>;
}

/** Which table the next ROUTE gets. */
class TableQueue {
  #tables: ScriptedRoutingTable[];

  constructor(table: ScriptedRoutingTable) {
    this.#tables = [checkedTable(table)];
  }

  set(table: ScriptedRoutingTable): void {
    this.#tables = [checkedTable(table)];
  }

  queue(tables: readonly ScriptedRoutingTable[]): void {
    if (tables.length === 0) throw new Error('queueTables needs at least one table');
    this.#tables = tables.map(checkedTable);
  }

  next(): ScriptedRoutingTable {
    return (this.#tables.length > 1 ? this.#tables.shift() : this.#tables[0]) as ScriptedRoutingTable;
  }
}

function checkedTable(table: ScriptedRoutingTable): ScriptedRoutingTable {
  if (!Number.isInteger(table.ttlSeconds) || table.ttlSeconds < 0) {
    throw new Error(`a routing table's ttlSeconds is a whole number of seconds, not ${table.ttlSeconds}`);
  }
  for (const address of [...table.routers, ...table.writers, ...table.readers]) {
    if (!/^[^:]+:\d+$/.test(address)) throw new Error(`routing table address ${address} is not host:port`);
  }
  return { ...table, routers: [...table.routers], writers: [...table.writers], readers: [...table.readers] };
}

/**
 * The ROUTE reply's rt map: a role with no members is left out, as Neo4j leaves out a writer while the
 * cluster has no leader.
 */
function routingTableMetadata(table: ScriptedRoutingTable, db: string): PackStreamMap {
  const servers: PackStreamMap[] = [];
  const roles: [string, readonly string[]][] = [
    ['WRITE', table.writers],
    ['READ', table.readers],
    ['ROUTE', table.routers],
  ];
  for (const [role, addresses] of roles) {
    if (addresses.length > 0) servers.push(map({ addresses: [...addresses], role }));
  }
  return map({ ttl: table.ttlSeconds, db, servers });
}

/**
 * The database a ROUTE names: its third field is the name or null in Bolt 4.3, and a map
 * {db, imp_user} from 4.4; undefined when it is neither (a malformed ROUTE).
 */
function routeDatabase(request: ScriptedRequest): string | null | undefined {
  const [routing, bookmarks, target] = request.fields;
  if (!(routing instanceof Map) || !Array.isArray(bookmarks)) return undefined;
  if (target === null || typeof target === 'string') return target;
  if (!(target instanceof Map)) return undefined;
  const db = target.get('db');
  if (db === undefined || db === null) return null;
  return typeof db === 'string' ? db : undefined;
}

class RouteCounter {
  total = 0;
  home = 0;
  readonly byDatabase = new Map<string, number>();

  count(db: string | null): void {
    this.total++;
    if (db === null) this.home++;
    else this.byDatabase.set(db, (this.byDatabase.get(db) ?? 0) + 1);
  }

  snapshot(): RouteRequestCounts {
    return { total: this.total, home: this.home, byDatabase: Object.fromEntries(this.byDatabase) };
  }
}

/** A cluster's router: answers ROUTE from the test's table and nothing else past the login. */
class RouterRole implements ScriptedRole {
  readonly #tables: TableQueue;
  readonly #counter: RouteCounter;

  constructor(tables: TableQueue, counter: RouteCounter) {
    this.#tables = tables;
    this.#counter = counter;
  }

  answer(request: ScriptedRequest, replies: ScriptedReplies): void {
    if (request.signature !== BoltSignature.ROUTE) {
      replies.failure(
        INVALID_REQUEST_CODE,
        `this scripted router answers ROUTE, not ${messageName(request.signature)}`,
      );
      return;
    }
    const db = routeDatabase(request);
    if (db === undefined) {
      replies.failure(INVALID_REQUEST_CODE, 'ROUTE needs a routing context, bookmarks and a database');
      return;
    }
    this.#counter.count(db);
    const table = this.#tables.next();
    replies.success(map({ rt: routingTableMetadata(table, db ?? table.db ?? DEFAULT_HOME_DATABASE) }));
  }

  reset(): void {}
}

export async function startScriptedRouter(
  options: ScriptedServerOptions & { readonly table: ScriptedRoutingTable },
): Promise<ScriptedRouter> {
  const tables = new TableQueue(options.table);
  const counter = new RouteCounter();
  const server = await ScriptedBoltServer.listen(options, () => new RouterRole(tables, counter));
  return {
    address: server.address,
    uri: `neo4j://${server.address}`,
    port: server.port,
    setTable: (table) => tables.set(table),
    queueTables: (queued) => tables.queue(queued),
    get routeRequests() {
      return counter.snapshot();
    },
    get connections() {
      return server.connections;
    },
    close: () => server.close(),
  };
}

export interface NotALeaderMember {
  /** What its reads' record names, as a real member's marker node does. */
  readonly name: string;
  /** 127.0.0.1:<port> */
  readonly address: string;
  /** bolt://127.0.0.1:<port> */
  readonly uri: string;
  readonly port: number;
  /** Writes refused with NotALeader so far. */
  readonly notALeaderAnswers: number;
  /** Reads answered with its name so far. */
  readonly readsServed: number;
  /** COMMITs that ended their connection unanswered (dropsCommits). */
  readonly commitsDropped: number;
  readonly connections: ConnectionCounts;
  close(): Promise<void>;
}

/** The read query's column, as in the cluster tests' `MATCH (m:ClusterMember) RETURN m.name AS member`. */
export const MEMBER_COLUMN = 'member';

/** A request's access mode is write unless its extra says mode 'r'. */
function isWrite(extra: PackStreamValue | undefined): boolean {
  return !(extra instanceof Map && extra.get('mode') === 'r');
}

function databaseOf(extra: PackStreamValue | undefined): string {
  const db = extra instanceof Map ? extra.get('db') : undefined;
  return typeof db === 'string' ? db : DEFAULT_HOME_DATABASE;
}

export interface ScriptedMemberOptions extends ScriptedServerOptions {
  readonly name: string;
  /** Writes are answered as reads are, not refused with NotALeader: the member is a writer. */
  readonly takesWrites?: boolean;
  /**
   * Every COMMIT ends its connection unanswered: a member killed while a COMMIT is on its way, a moment
   * no real server can be killed at on cue.
   */
  readonly dropsCommits?: boolean;
}

interface MemberCounts {
  notALeader: number;
  reads: number;
  commitsDropped: number;
}

/**
 * A follower: a write BEGIN or write auto-commit RUN gets NotALeader (then IGNORED until RESET, which
 * the skeleton does); a read gets one record naming this member, whatever its query.
 */
class NotALeaderRole implements ScriptedRole {
  readonly #name: string;
  readonly #counts: MemberCounts;
  readonly #takesWrites: boolean;
  readonly #dropsCommits: boolean;
  #transaction: { db: string } | null = null;
  #pendingResult: { db: string } | null = null;

  constructor(options: ScriptedMemberOptions, counts: MemberCounts) {
    this.#name = options.name;
    this.#takesWrites = options.takesWrites ?? false;
    this.#dropsCommits = options.dropsCommits ?? false;
    this.#counts = counts;
  }

  answer(request: ScriptedRequest, replies: ScriptedReplies): void {
    switch (request.signature) {
      case BoltSignature.BEGIN:
        this.#begin(request.fields[0], replies);
        return;
      case BoltSignature.RUN:
        this.#run(request.fields[2], replies);
        return;
      case BoltSignature.PULL:
      case BoltSignature.DISCARD:
        this.#stream(request.signature === BoltSignature.PULL, replies);
        return;
      case BoltSignature.COMMIT:
      case BoltSignature.ROLLBACK:
        if (this.#transaction === null) {
          replies.failure(INVALID_REQUEST_CODE, `${messageName(request.signature)} outside a transaction`);
          return;
        }
        if (this.#dropsCommits && request.signature === BoltSignature.COMMIT) {
          this.#counts.commitsDropped++;
          replies.drop();
          return;
        }
        this.#transaction = null;
        this.#pendingResult = null;
        replies.success();
        return;
      default:
        replies.failure(INVALID_REQUEST_CODE, `this scripted member does not answer ${messageName(request.signature)}`);
    }
  }

  reset(): void {
    this.#transaction = null;
    this.#pendingResult = null;
  }

  #begin(extra: PackStreamValue | undefined, replies: ScriptedReplies): void {
    if (this.#transaction !== null) {
      replies.failure(INVALID_REQUEST_CODE, 'BEGIN inside a transaction');
    } else if (isWrite(extra) && !this.#takesWrites) {
      this.#notALeader(replies);
    } else {
      this.#transaction = { db: databaseOf(extra) };
      replies.success();
    }
  }

  #run(extra: PackStreamValue | undefined, replies: ScriptedReplies): void {
    if (this.#pendingResult !== null) {
      replies.failure(INVALID_REQUEST_CODE, 'RUN before the last result was pulled');
      return;
    }
    if (this.#transaction === null && isWrite(extra) && !this.#takesWrites) {
      this.#notALeader(replies);
      return;
    }
    this.#pendingResult = { db: this.#transaction?.db ?? databaseOf(extra) };
    const inTransaction = this.#transaction !== null;
    replies.success(map({ fields: [MEMBER_COLUMN], t_first: 0, ...(inTransaction ? { qid: 0 } : {}) }));
  }

  #stream(pull: boolean, replies: ScriptedReplies): void {
    const result = this.#pendingResult;
    if (result === null) {
      replies.failure(INVALID_REQUEST_CODE, 'PULL or DISCARD with no result open');
      return;
    }
    this.#pendingResult = null;
    if (pull) {
      replies.record([this.#name]);
      this.#counts.reads++;
    }
    replies.success(map({ has_more: false, type: 'r', t_last: 0, db: result.db }));
  }

  #notALeader(replies: ScriptedReplies): void {
    this.#counts.notALeader++;
    replies.failure(
      NOT_A_LEADER_CODE,
      'No write operations are allowed directly on this database. Writes must pass through the leader. ' +
        'The role of this server is: FOLLOWER',
    );
  }
}

export async function startNotALeaderMember(options: ScriptedMemberOptions): Promise<NotALeaderMember> {
  const counts: MemberCounts = { notALeader: 0, reads: 0, commitsDropped: 0 };
  const server = await ScriptedBoltServer.listen(options, () => new NotALeaderRole(options, counts));
  return {
    name: options.name,
    address: server.address,
    uri: `bolt://${server.address}`,
    port: server.port,
    get notALeaderAnswers() {
      return counts.notALeader;
    },
    get readsServed() {
      return counts.reads;
    },
    get commitsDropped() {
      return counts.commitsDropped;
    },
    get connections() {
      return server.connections;
    },
    close: () => server.close(),
  };
}
