import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BoltConversationError,
  BoltConversationTracker,
  BoltDechunker,
  type ConversationEvent,
  type ConversationTrackerOptions,
  type PackStreamValue,
  type QueryFinishedEvent,
  type RoutingTableMessage,
  BoltSignature as S,
} from '../../../src/proxy/bolt/index.ts';
import { map, routingTable, wireOf } from './bolt-test-helpers.ts';

/** Drives a tracker through two dechunkers fed with wire bytes, as the proxy will. */
class Conversation {
  readonly events: ConversationEvent[] = [];
  readonly tracker: BoltConversationTracker;
  readonly routingMessages: (RoutingTableMessage | null)[] = [];
  #now = 0;
  readonly #client: BoltDechunker;
  readonly #server: BoltDechunker;

  constructor(options: Omit<ConversationTrackerOptions, 'onEvent'> = {}) {
    this.tracker = new BoltConversationTracker({ ...options, onEvent: (event) => this.events.push(event) });
    this.#client = new BoltDechunker({
      keepPayload: this.tracker.keepClientPayload,
      onMessage: (frame) => this.tracker.clientMessage(frame, this.#now),
    });
    this.#server = new BoltDechunker({
      keepPayload: this.tracker.keepServerPayload,
      onMessage: (frame) => this.routingMessages.push(this.tracker.serverMessage(frame, this.#now)),
    });
  }

  at(nowMs: number): this {
    this.#now = nowMs;
    return this;
  }
  client(signature: number, ...fields: PackStreamValue[]): this {
    this.#client.feed(wireOf(signature, ...fields));
    return this;
  }
  server(signature: number, ...fields: PackStreamValue[]): this {
    this.#server.feed(wireOf(signature, ...fields));
    return this;
  }
  success(metadata: Record<string, PackStreamValue> = {}): this {
    return this.server(S.SUCCESS, map(metadata));
  }
  ofType<T extends ConversationEvent['type']>(type: T): Extract<ConversationEvent, { type: T }>[] {
    return this.events.filter((event): event is Extract<ConversationEvent, { type: T }> => event.type === type);
  }
}

const QUERY = 'MATCH (p:Person {name: $name}) RETURN p';
const PARAMETERS = map({ name: 'Alice Secretvalue' });

function finished(overrides: Partial<QueryFinishedEvent>): QueryFinishedEvent {
  return {
    type: 'queryFinished',
    durationSeconds: 0,
    outcome: 'success',
    database: null,
    mode: 'write',
    errorCode: null,
    inExplicitTransaction: false,
    recordCount: 0,
    queryText: null,
    attribution: null,
    ...overrides,
  };
}

describe('BoltConversationTracker: queries', () => {
  it('times a pipelined auto-commit RUN + PULL from RUN to the final summary', () => {
    const conversation = new Conversation()
      .at(1000)
      .client(S.RUN, QUERY, PARAMETERS, map({ db: 'movies', mode: 'r' }))
      .client(S.PULL, map({ n: 1000 }))
      .at(1010)
      .success({ fields: ['p'], t_first: 3 })
      .server(S.RECORD, [1])
      .server(S.RECORD, [2])
      .at(1250)
      .success({ has_more: false, db: 'movies', type: 'r', t_last: 1 });
    assert.deepEqual(conversation.events, [
      finished({ durationSeconds: 0.25, database: 'movies', mode: 'read', recordCount: 2 }),
    ]);
    assert.equal(conversation.tracker.pendingRequestCount, 0);
  });

  it('takes the database from the final SUCCESS when RUN names none, and defaults to write', () => {
    const conversation = new Conversation()
      .client(S.RUN, QUERY, PARAMETERS, map({ db: '' }))
      .client(S.PULL, map({ n: -1 }))
      .success({ fields: [] })
      .success({ db: 'neo4j' });
    assert.deepEqual(conversation.ofType('queryFinished'), [finished({ database: 'neo4j', mode: 'write' })]);
  });

  it('keeps a query open across PULLs answered with has_more true', () => {
    const conversation = new Conversation()
      .at(0)
      .client(S.RUN, QUERY, PARAMETERS, map({}))
      .client(S.PULL, map({ n: 1 }))
      .success({ fields: ['p'] })
      .server(S.RECORD, [1])
      .success({ has_more: true });
    assert.equal(conversation.events.length, 0);
    conversation
      .at(2000)
      .client(S.PULL, map({ n: 1 }))
      .server(S.RECORD, [2])
      .success({ has_more: false });
    assert.deepEqual(conversation.events, [finished({ durationSeconds: 2, recordCount: 2 })]);
  });

  it('follows interleaved results of an explicit transaction by qid, with db and mode from BEGIN', () => {
    const conversation = new Conversation()
      .at(0)
      .client(S.BEGIN, map({ db: 'movies', mode: 'r', bookmarks: [] }))
      .client(S.RUN, 'RETURN 1', map({}), map({}))
      .success({})
      .at(10)
      .success({ fields: ['1'], qid: 0 })
      .client(S.RUN, 'RETURN 2', map({}), map({}))
      .success({ fields: ['2'], qid: 1 })
      .client(S.PULL, map({ n: 10, qid: 1 }))
      .client(S.PULL, map({ n: 10, qid: 0 }))
      .server(S.RECORD, [2])
      .at(30)
      .success({ has_more: false })
      .at(40)
      .server(S.RECORD, [1])
      .success({ has_more: false })
      .client(S.COMMIT)
      .success({ bookmark: 'bm' });
    const events = conversation.ofType('queryFinished');
    const inTransaction = { database: 'movies', mode: 'read' as const, inExplicitTransaction: true, recordCount: 1 };
    assert.deepEqual(events, [
      finished({ ...inTransaction, durationSeconds: 0.02 }),
      finished({ ...inTransaction, durationSeconds: 0.04 }),
    ]);
  });

  it('keeps only open queries addressable by qid, however many a transaction runs', () => {
    const conversation = new Conversation().client(S.BEGIN, map({})).success();
    for (let qid = 0; qid < 2000; qid++) {
      conversation
        .client(S.RUN, 'RETURN 1', map({}), map({}))
        .success({ fields: ['1'], qid })
        .client(S.PULL, map({ n: -1, qid }))
        .server(S.RECORD, [1])
        .success({ has_more: false });
    }
    conversation.client(S.PULL, map({ n: -1, qid: 5 })).success({ has_more: false });
    assert.equal(conversation.ofType('queryFinished').length, 2000, 'a PULL for a finished qid finishes nothing');
    assert.equal(conversation.tracker.openQueryCount, 0);
  });

  it('reports a failed RUN once, with the code, and ignores the IGNORED PULL after it', () => {
    const conversation = new Conversation()
      .client(S.RUN, 'RETRUN 1', map({}), map({}))
      .client(S.PULL, map({ n: -1 }))
      .server(
        S.FAILURE,
        map({
          neo4j_code: 'Neo.ClientError.Statement.SyntaxError',
          gql_status: '42001',
          message: 'Invalid input RETRUN: "RETRUN 1"',
          description: 'error: syntax error or access rule violation',
          diagnostic_record: map({ CURRENT_SCHEMA: '/', _classification: 'CLIENT_ERROR' }),
          cause: map({ gql_status: '42I06', cause: map({ gql_status: '42I00' }) }),
        }),
      )
      .server(S.IGNORED)
      .client(S.RESET)
      .success();
    assert.deepEqual(conversation.events, [
      {
        type: 'failure',
        request: 'RUN',
        code: '42001',
        gqlStatus: '42001',
        neo4jCode: 'Neo.ClientError.Statement.SyntaxError',
      },
      finished({ outcome: 'error', errorCode: '42001' }),
    ]);
  });

  it('prefers neo4j_code over the generic gql_status 50N42 that Neo4j 5.26 sends for most errors', () => {
    const conversation = new Conversation().client(S.RUN, 'RETRUN 1', map({}), map({})).server(
      S.FAILURE,
      map({
        neo4j_code: 'Neo.ClientError.Statement.SyntaxError',
        message: 'Invalid input',
        gql_status: '50N42',
        description: 'error: general processing exception - unexpected error.',
      }),
    );
    assert.deepEqual(conversation.ofType('failure'), [
      {
        type: 'failure',
        request: 'RUN',
        code: 'Neo.ClientError.Statement.SyntaxError',
        gqlStatus: '50N42',
        neo4jCode: 'Neo.ClientError.Statement.SyntaxError',
      },
    ]);
  });

  it('falls back to neo4j_code, then to the pre-5.7 code', () => {
    const conversation = new Conversation()
      .client(S.RUN, 'x', map({}), map({}))
      .server(S.FAILURE, map({ code: 'Neo.TransientError.General.DatabaseUnavailable', message: 'm' }));
    assert.equal(conversation.ofType('queryFinished')[0]?.errorCode, 'Neo.TransientError.General.DatabaseUnavailable');
  });

  it('reports a RUN the server IGNORED after an earlier failure as ignored', () => {
    const conversation = new Conversation()
      .client(S.BEGIN, map({}))
      .client(S.RUN, 'x', map({}), map({}))
      .server(S.FAILURE, map({ code: 'Neo.ClientError.Transaction.Invalid' }))
      .server(S.IGNORED);
    assert.deepEqual(conversation.ofType('queryFinished'), [
      finished({ outcome: 'ignored', inExplicitTransaction: true }),
    ]);
    assert.equal(conversation.ofType('failure')[0]?.request, 'BEGIN');
  });

  it('reports results left open by RESET, ROLLBACK or the connection closing as abandoned', () => {
    const reset = new Conversation()
      .client(S.RUN, 'x', map({}), map({}))
      .client(S.PULL, map({ n: 1 }))
      .success({ fields: [] })
      .success({ has_more: true })
      .client(S.RESET)
      .client(S.RUN, 'y', map({}), map({}))
      .success();
    assert.deepEqual(
      reset.ofType('queryFinished').map((event) => event.outcome),
      ['abandoned'],
      'the RUN sent after RESET stays open',
    );
    const rollback = new Conversation()
      .client(S.BEGIN, map({}))
      .client(S.RUN, 'x', map({}), map({}))
      .success()
      .success({ fields: [], qid: 0 })
      .client(S.ROLLBACK)
      .success();
    assert.deepEqual(
      rollback.ofType('queryFinished').map((event) => [event.outcome, event.inExplicitTransaction]),
      [['abandoned', true]],
    );
    const closed = new Conversation().at(0).client(S.RUN, 'x', map({}), map({}));
    closed.tracker.close(500);
    assert.deepEqual(closed.ofType('queryFinished'), [finished({ outcome: 'abandoned', durationSeconds: 0.5 })]);
  });

  it('pops nothing for GOODBYE, which gets no reply', () => {
    const conversation = new Conversation().client(S.RESET).client(S.GOODBYE);
    assert.equal(conversation.tracker.pendingRequestCount, 1);
  });

  it('refuses a summary with no request waiting: the peer is out of step and no later match can be trusted', () => {
    for (const signature of [S.SUCCESS, S.FAILURE, S.IGNORED]) {
      const conversation = new Conversation().client(S.RESET).success();
      assert.throws(
        () => conversation.server(signature, ...(signature === S.IGNORED ? [] : [map({})])),
        (error: unknown) => error instanceof BoltConversationError && error.reason === 'unexpected-summary',
      );
    }
  });
});

describe('BoltConversationTracker: connection setup', () => {
  it('keeps the user agent of a HELLO, and none of the pre-5.1 credentials', () => {
    const conversation = new Conversation()
      .client(
        S.HELLO,
        map({
          user_agent: 'neo4j-python/5.28.1 Python/3.11.4-final-0 (linux)',
          scheme: 'basic',
          principal: 'neo4j',
          credentials: 'hunter2-password',
          routing: map({ address: 'db.example.com:7687' }),
        }),
      )
      .success({ server: 'Neo4j/5.26.0', connection_id: 'bolt-42', hints: map({}) });
    assert.equal(conversation.tracker.clientUserAgent, 'neo4j-python/5.28.1 Python/3.11.4-final-0 (linux)');
    assert.deepEqual(conversation.events, []);
    assert.equal(conversation.tracker.pendingRequestCount, 0);
  });

  it('reads the user agent of a Bolt 1-2 INIT, a plain string', () => {
    const conversation = new Conversation()
      .client(S.HELLO, 'neo4j-java/1.7.6', map({ scheme: 'basic', credentials: 'x' }))
      .success({ server: 'Neo4j/3.5.0' });
    assert.equal(conversation.tracker.clientUserAgent, 'neo4j-java/1.7.6');
  });

  it('reports failures of HELLO and LOGON as auth failures too', () => {
    const hello = new Conversation()
      .client(S.HELLO, map({ user_agent: 'a', scheme: 'basic', principal: 'p', credentials: 'c' }))
      .server(S.FAILURE, map({ code: 'Neo.ClientError.Security.Unauthorized', message: 'no' }));
    assert.deepEqual(hello.ofType('authFailure'), [
      { type: 'authFailure', request: 'HELLO', code: 'Neo.ClientError.Security.Unauthorized' },
    ]);
    const logon = new Conversation()
      .client(S.HELLO, map({ user_agent: 'neo4j-javascript/6.3.0' }))
      .client(S.LOGON, map({ scheme: 'basic', principal: 'p', credentials: 'c' }))
      .success({ server: 'Neo4j/2025.10.0' })
      .server(S.FAILURE, map({ gql_status: '42NFF', neo4j_code: 'Neo.ClientError.Security.Unauthorized' }));
    assert.deepEqual(logon.ofType('authFailure'), [{ type: 'authFailure', request: 'LOGON', code: '42NFF' }]);
  });

  it('keeps the FIFO aligned through LOGON, LOGOFF and TELEMETRY', () => {
    const conversation = new Conversation()
      .client(S.LOGON, map({ scheme: 'none' }))
      .client(S.TELEMETRY, 1)
      .client(S.LOGOFF)
      .client(S.LOGON, map({ scheme: 'none' }))
      .client(S.RUN, 'x', map({}), map({}))
      .success()
      .success()
      .success()
      .success()
      .server(S.FAILURE, map({ code: 'X' }));
    assert.deepEqual(
      conversation.ofType('failure').map((event) => event.request),
      ['RUN'],
    );
  });

  it('counts messages per direction and name, as deltas', () => {
    const conversation = new Conversation()
      .client(S.RUN, 'x', map({}), map({}))
      .client(S.PULL, map({ n: -1 }))
      .success()
      .server(S.RECORD, [1])
      .server(S.RECORD, [2])
      .success();
    conversation.tracker.clientMessage({ signature: 0x55, payload: null }, 0);
    assert.deepEqual(conversation.tracker.takeMessageCounts(), {
      client: { RUN: 1, PULL: 1, UNKNOWN: 1 },
      server: { SUCCESS: 2, RECORD: 2 },
    });
    assert.deepEqual(conversation.tracker.takeMessageCounts(), { client: {}, server: {} });
  });
});

describe('BoltConversationTracker: the database of a query that names none', () => {
  const logon = (user: string) => map({ scheme: 'basic', principal: user, credentials: 'secret-password' });
  const divideByZero = (conversation: Conversation, extra = map({})) =>
    conversation
      .client(S.RUN, 'RETURN 1 / 0', map({}), extra)
      .client(S.PULL, map({ n: -1 }))
      .server(S.FAILURE, map({ code: 'Neo.ClientError.Statement.ArithmeticError' }))
      .server(S.IGNORED);
  const succeed = (conversation: Conversation, database: string, extra = map({})) =>
    conversation
      .client(S.RUN, 'RETURN 1', map({}), extra)
      .client(S.PULL, map({ n: -1 }))
      .success({ fields: ['1'] })
      .success({ has_more: false, db: database });
  const databases = (conversation: Conversation) =>
    conversation.ofType('queryFinished').map((event) => [event.outcome, event.database]);

  it('is the home database a successful query of the same user ran on, on this connection', () => {
    const conversation = new Conversation().client(S.HELLO, map({ user_agent: 'a' })).client(S.LOGON, logon('alice'));
    conversation.success().success({});
    divideByZero(conversation);
    succeed(conversation, 'neo4j');
    divideByZero(conversation);
    assert.deepEqual(databases(conversation), [
      ['error', null],
      ['success', 'neo4j'],
      ['error', 'neo4j'],
    ]);
  });

  it('is learnt across connections through the shared memory, per user, and never holds credentials', () => {
    const homes = new Map<string, string>();
    const first = new Conversation({ homeDatabases: homes }).client(S.LOGON, logon('alice')).success();
    succeed(first, 'movies');
    const second = new Conversation({ homeDatabases: homes }).client(S.LOGON, logon('alice')).success();
    divideByZero(second);
    const other = new Conversation({ homeDatabases: homes }).client(S.LOGON, logon('bob')).success();
    divideByZero(other);
    assert.deepEqual(databases(second), [['error', 'movies']]);
    assert.deepEqual(databases(other), [['error', null]], "bob's home is not alice's");
    assert.deepEqual([...homes], [['alice', 'movies']]);
  });

  it('takes the principal of a pre-5.1 HELLO, and forgets the user at LOGOFF', () => {
    const homes = new Map<string, string>([['carol', 'sales']]);
    const conversation = new Conversation({ homeDatabases: homes })
      .client(S.HELLO, map({ user_agent: 'a', scheme: 'basic', principal: 'carol', credentials: 'x' }))
      .success();
    divideByZero(conversation);
    conversation.client(S.LOGOFF).success();
    divideByZero(conversation);
    assert.deepEqual(databases(conversation), [
      ['error', 'sales'],
      ['error', null],
    ]);
  });

  it("is the impersonated user's home under imp_user, and the named database when one is named", () => {
    const homes = new Map<string, string>([
      ['alice', 'neo4j'],
      ['dave', 'hr'],
    ]);
    const conversation = new Conversation({ homeDatabases: homes }).client(S.LOGON, logon('alice')).success();
    divideByZero(conversation, map({ imp_user: 'dave' }));
    divideByZero(conversation, map({ db: 'movies' }));
    conversation.client(S.BEGIN, map({ imp_user: 'dave' })).success();
    divideByZero(conversation);
    assert.deepEqual(databases(conversation), [
      ['error', 'hr'],
      ['error', 'movies'],
      ['error', 'hr'],
    ]);
  });

  it('is learnt from the routing table of a ROUTE that named no database, not one that named one', () => {
    const homes = new Map<string, string>();
    const conversation = new Conversation({ homeDatabases: homes })
      .client(S.LOGON, logon('alice'))
      .success()
      .client(S.ROUTE, map({}), [], map({ db: 'other' }))
      .success({ rt: map({ ttl: 300, db: 'other', servers: [] }) });
    assert.deepEqual([...homes], []);
    conversation.client(S.ROUTE, map({}), [], map({})).success({ rt: map({ ttl: 300, db: 'neo4j', servers: [] }) });
    divideByZero(conversation);
    assert.deepEqual([...homes], [['alice', 'neo4j']]);
    assert.deepEqual(databases(conversation), [['error', 'neo4j']]);
    assert.deepEqual(conversation.routingMessages.filter(Boolean), [
      { kind: 'route-success' },
      { kind: 'route-success' },
    ]);
  });
});

describe('BoltConversationTracker: routing', () => {
  const rt = routingTable(['a:7687', 'b:7687', 'c:7687']);

  it('marks a ROUTE reply for rewriting, and reports nothing of it', () => {
    const conversation = new Conversation()
      .at(0)
      .client(S.ROUTE, map({ address: 'proxy:7687' }), [], map({ db: 'neo4j' }))
      .at(5)
      .success({ rt });
    assert.deepEqual(conversation.routingMessages, [{ kind: 'route-success' }]);
    assert.deepEqual(conversation.events, []);
  });

  it('marks nothing in a FAILURE to a 4.3 ROUTE (database as a plain string)', () => {
    const conversation = new Conversation()
      .client(S.ROUTE, map({}), [], 'movies')
      .server(S.FAILURE, map({ code: 'Neo.ClientError.Database.DatabaseNotFound' }));
    assert.deepEqual(
      conversation.ofType('failure').map((event) => event.request),
      ['ROUTE'],
    );
    assert.equal(conversation.routingMessages[0], null, 'a FAILURE has nothing to rewrite');
  });

  it('keeps and marks the RECORDs of the legacy routing procedure, and only those', () => {
    const servers = rt.get('servers') ?? null;
    const conversation = new Conversation()
      .client(S.RUN, 'CALL dbms.routing.getRoutingTable($context, $database)', map({ context: map({}) }), map({}))
      .client(S.PULL, map({ n: -1 }))
      .success({ fields: ['ttl', 'servers'] })
      .server(S.RECORD, [300, servers])
      .success({ has_more: false, db: 'system' })
      .client(S.RUN, 'RETURN 1', map({}), map({}))
      .client(S.PULL, map({ n: -1 }))
      .success({ fields: ['1'] })
      .server(S.RECORD, [1])
      .success({});
    assert.deepEqual(conversation.routingMessages, [
      null,
      { kind: 'procedure-record', fields: ['ttl', 'servers'] },
      null,
      null,
      null,
      null,
    ]);
    assert.equal(conversation.ofType('queryFinished').length, 2);
    assert.equal(conversation.tracker.keepServerPayload(S.RECORD), false);
  });
});

describe('BoltConversationTracker: robustness and privacy', () => {
  it('treats an undecodable payload as carrying no metadata', () => {
    const events: ConversationEvent[] = [];
    const tracker = new BoltConversationTracker({ onEvent: (event) => events.push(event) });
    tracker.clientMessage({ signature: S.RUN, payload: Buffer.from([0xb3, 0x10, 0xd0, 0xff]) }, 0);
    tracker.serverMessage({ signature: S.FAILURE, payload: Buffer.from([0xb1, 0x7f, 0xa1, 0x01]) }, 0);
    assert.equal(tracker.payloadDecodeFailureCount, 3, 'RUN is read twice: query text, extra');
    assert.deepEqual(
      events.map((event) => event.type),
      ['failure', 'queryFinished'],
    );
  });

  it('refuses to grow without bound when a client never reads replies', () => {
    const tracker = new BoltConversationTracker({ onEvent: () => {}, maxPendingRequests: 3 });
    for (let count = 0; count < 3; count++) tracker.clientMessage({ signature: S.RESET, payload: null }, 0);
    assert.throws(
      () => tracker.clientMessage({ signature: S.RESET, payload: null }, 0),
      (error: unknown) => error instanceof BoltConversationError && error.reason === 'too-many-pending-requests',
    );
  });

  it('puts no query text, parameter or credential into any event', () => {
    const conversation = new Conversation()
      .client(S.HELLO, map({ user_agent: 'neo4j-go/5.1.0', principal: 'admin', credentials: 'S3cret!' }))
      .success({ server: 'Neo4j/4.4.0' })
      .client(S.RUN, QUERY, PARAMETERS, map({ tx_metadata: map({ app: 'billing-Secretvalue' }) }))
      .client(S.PULL, map({ n: -1 }))
      .success({ fields: ['p'] })
      .server(S.FAILURE, map({ code: 'Neo.ClientError.Statement.X', message: `bad ${QUERY} Alice Secretvalue` }))
      .client(S.ROUTE, map({ address: 'x' }), ['bookmark-Secretvalue'], map({ imp_user: 'Secretvalue' }));
    const serialized = JSON.stringify(conversation.events);
    for (const secret of ['MATCH', 'Alice', 'Secretvalue', 'S3cret', 'admin']) {
      assert.ok(!serialized.includes(secret), `${secret} leaked into ${serialized}`);
    }
  });
});
