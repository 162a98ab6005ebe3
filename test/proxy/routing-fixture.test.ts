/**
 * The scripted Bolt router and not-a-leader member the cluster tests stand on (test/support/scripted-bolt.ts):
 * what they answer on the wire, byte for byte where it matters, and that the real JavaScript driver
 * takes the router's table and the member's NotALeader as it takes a cluster's. No Neo4j needed.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import neo4j from 'neo4j-driver';
import { BoltSignature, type PackStreamMap, type PackStreamValue } from '../../src/proxy/bolt/index.ts';
import {
  connectBolt58,
  describeMessage,
  handshakeOffers,
  hello,
  loggedInBolt58,
  logon,
  map,
  message,
  RawBoltClient,
  runAndPull,
} from '../support/raw-bolt.ts';
import {
  NOT_A_LEADER_CODE,
  type NotALeaderMember,
  type ScriptedRouter,
  type ScriptedRoutingTable,
  startNotALeaderMember,
  startScriptedRouter,
  UNAUTHORIZED_CODE,
} from '../support/scripted-bolt.ts';

const LOGIN = { username: 'neo4j', password: 'cluster-password' };
const USER_AGENT = 'routing-fixture-test/1.0';

function table(overrides: Partial<ScriptedRoutingTable> = {}): ScriptedRoutingTable {
  return {
    ttlSeconds: 300,
    routers: ['127.0.0.1:7001'],
    writers: ['127.0.0.1:7002'],
    readers: ['127.0.0.1:7003', '127.0.0.1:7004'],
    ...overrides,
  };
}

/** ROUTE as Bolt 4.4+ sends it: routing context, bookmarks, {db}. */
function route(db?: string): Buffer {
  return message(BoltSignature.ROUTE, map({ address: 'localhost:7687' }), [], map(db === undefined ? {} : { db }));
}

/** A SUCCESS's rt as plain objects: {ttl, db, servers: {ROLE: addresses}}. */
function routingTableOf(reply: { signature: number; fields: PackStreamValue[] }): {
  ttl: PackStreamValue;
  db: PackStreamValue;
  servers: Record<string, PackStreamValue>;
} {
  assert.equal(reply.signature, BoltSignature.SUCCESS, describeMessage(reply));
  const rt = (reply.fields[0] as PackStreamMap).get('rt') as PackStreamMap;
  const servers = rt.get('servers') as PackStreamMap[];
  return {
    ttl: rt.get('ttl') ?? null,
    db: rt.get('db') ?? null,
    servers: Object.fromEntries(servers.map((server) => [server.get('role') as string, server.get('addresses') ?? []])),
  };
}

function metadata(reply: { fields: PackStreamValue[] }): PackStreamMap {
  return reply.fields[0] as PackStreamMap;
}

async function expectSignature(client: RawBoltClient, signature: number, what: string): Promise<PackStreamMap> {
  const reply = await client.readMessage();
  assert.equal(reply.signature, signature, `${what}: ${describeMessage(reply)}`);
  return metadata(reply) ?? new Map();
}

describe('scripted router', () => {
  let router: ScriptedRouter;
  before(async () => {
    router = await startScriptedRouter({ ...LOGIN, table: table() });
  });
  beforeEach(() => router.setTable(table()));
  after(() => router?.close());

  it('answers HELLO as Neo4j 5.26 does, then ROUTE with the table, home database as neo4j', async () => {
    const client = await connectBolt58(router.address, [hello(USER_AGENT), logon(LOGIN.username, LOGIN.password)]);
    const helloReply = await expectSignature(client, BoltSignature.SUCCESS, 'HELLO');
    assert.equal(helloReply.get('server'), 'Neo4j/5.26.0');
    assert.match(String(helloReply.get('connection_id')), /^bolt-\d+$/);
    // As Neo4j 5.26 on Bolt 5.8 with server-side routing on (its default): drivers then cache the home database.
    assert.deepEqual(helloReply.get('hints'), map({ 'ssr.enabled': true }));
    await expectSignature(client, BoltSignature.SUCCESS, 'LOGON');
    const before = router.routeRequests;
    client.write(Buffer.concat([route(), route('orders')]));
    assert.deepEqual(routingTableOf(await client.readMessage()), {
      ttl: 300,
      db: 'neo4j',
      servers: { WRITE: ['127.0.0.1:7002'], READ: ['127.0.0.1:7003', '127.0.0.1:7004'], ROUTE: ['127.0.0.1:7001'] },
    });
    assert.equal(routingTableOf(await client.readMessage()).db, 'orders');
    const counted = router.routeRequests;
    assert.equal(counted.total - before.total, 2);
    assert.equal(counted.home - before.home, 1);
    assert.equal((counted.byDatabase.orders ?? 0) - (before.byDatabase.orders ?? 0), 1);
    client.close();
  });

  it('reads a handshake and pipelined requests split a byte at a time', async () => {
    const client = await connectBolt58(
      router.address,
      [hello(USER_AGENT), logon(LOGIN.username, LOGIN.password), route('bytes')],
      { byteByByte: true },
    );
    await expectSignature(client, BoltSignature.SUCCESS, 'HELLO');
    await expectSignature(client, BoltSignature.SUCCESS, 'LOGON');
    assert.equal(routingTableOf(await client.readMessage()).db, 'bytes');
    client.close();
  });

  it('serves queued tables once each, then the last for every ROUTE; a role with no member is left out', async () => {
    router.queueTables([table({ writers: [] }), table({ ttlSeconds: 1, writers: ['127.0.0.1:7009'] })]);
    const client = await loggedInBolt58(router.address, { userAgent: USER_AGENT, ...LOGIN });
    client.write(Buffer.concat([route(), route(), route()]));
    const first = routingTableOf(await client.readMessage());
    assert.deepEqual(Object.keys(first.servers).sort(), ['READ', 'ROUTE'], 'no writer known: no WRITE entry');
    for (const step of ['second', 'third']) {
      const later = routingTableOf(await client.readMessage());
      assert.deepEqual([later.ttl, later.servers.WRITE], [1, ['127.0.0.1:7009']], step);
    }
    client.close();
  });

  it('refuses a wrong password on LOGON and closes that connection', async () => {
    const client = await connectBolt58(router.address, [hello(USER_AGENT), logon(LOGIN.username, 'wrong')]);
    await expectSignature(client, BoltSignature.SUCCESS, 'HELLO');
    const failure = await expectSignature(client, BoltSignature.FAILURE, 'LOGON');
    assert.equal(failure.get('neo4j_code'), UNAUTHORIZED_CODE, 'Bolt 5.8 carries the code as neo4j_code');
    await client.waitForClose();
  });

  it('speaks Bolt 4.4 with the credentials in HELLO and the 4.3 ROUTE shape', async () => {
    const wrong = await RawBoltClient.connect(router.address);
    wrong.write(handshakeOffers([0, 4, 4]));
    assert.deepEqual([...(await wrong.readBytes(4))], [0, 0, 4, 4]);
    wrong.startMessages();
    wrong.write(message(BoltSignature.HELLO, map({ user_agent: USER_AGENT, scheme: 'basic', principal: 'neo4j' })));
    const refused = await expectSignature(wrong, BoltSignature.FAILURE, 'HELLO without credentials');
    assert.equal(refused.get('code'), UNAUTHORIZED_CODE, 'before 5.7 the code is under code');
    await wrong.waitForClose();

    const client = await RawBoltClient.connect(router.address);
    client.write(handshakeOffers([0, 4, 4]));
    await client.readBytes(4);
    client.startMessages();
    client.write(
      Buffer.concat([
        message(
          BoltSignature.HELLO,
          map({ user_agent: USER_AGENT, scheme: 'basic', principal: LOGIN.username, credentials: LOGIN.password }),
        ),
        message(BoltSignature.ROUTE, map({}), [], 'legacy'),
        message(BoltSignature.ROUTE, map({}), [], null),
      ]),
    );
    const helloReply = await expectSignature(client, BoltSignature.SUCCESS, 'HELLO');
    assert.deepEqual(helloReply.get('hints'), map({}), 'no server-side routing hint before Bolt 5.8');
    assert.equal(routingTableOf(await client.readMessage()).db, 'legacy');
    assert.equal(routingTableOf(await client.readMessage()).db, 'neo4j');
    client.close();
  });

  it('fails what it does not script, ignores what follows until RESET, then answers again', async () => {
    const client = await loggedInBolt58(router.address, { userAgent: USER_AGENT, ...LOGIN });
    client.write(
      Buffer.concat([
        runAndPull('RETURN 1'),
        route(),
        message(BoltSignature.RESET),
        message(BoltSignature.TELEMETRY, 1),
        route(),
      ]),
    );
    await expectSignature(client, BoltSignature.FAILURE, 'RUN');
    await expectSignature(client, BoltSignature.IGNORED, 'PULL');
    await expectSignature(client, BoltSignature.IGNORED, 'ROUTE after the failure');
    await expectSignature(client, BoltSignature.SUCCESS, 'RESET');
    await expectSignature(client, BoltSignature.SUCCESS, 'TELEMETRY');
    routingTableOf(await client.readMessage());
    client.write(message(BoltSignature.GOODBYE));
    await client.waitForClose();
  });

  it('closes a connection that sends bytes that are not Bolt, and only that one', async () => {
    const opened = router.connections.opened;
    const notBolt = await RawBoltClient.connect(router.address);
    notBolt.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await notBolt.waitForClose();

    const badFrame = await loggedInBolt58(router.address, { userAgent: USER_AGENT, ...LOGIN });
    const bystander = await loggedInBolt58(router.address, { userAgent: USER_AGENT, ...LOGIN });
    badFrame.write(Buffer.from([0x00, 0x02, 0x01, 0x02, 0x00, 0x00]));
    await badFrame.waitForClose();

    bystander.write(route());
    routingTableOf(await bystander.readMessage());
    assert.equal(router.connections.opened - opened, 3);
    assert.equal(router.connections.open >= 1, true);
    bystander.close();
  });
});

describe('scripted not-a-leader member', () => {
  let member: NotALeaderMember;
  before(async () => {
    member = await startNotALeaderMember({ ...LOGIN, name: 'follower' });
  });
  after(() => member?.close());

  it('answers a write BEGIN with NotALeader, IGNORED until RESET, then serves a read naming itself', async () => {
    const refusedBefore = member.notALeaderAnswers;
    const client = await loggedInBolt58(member.address, { userAgent: USER_AGENT, ...LOGIN });
    client.write(
      Buffer.concat([
        message(BoltSignature.BEGIN, map({})),
        runAndPull('CREATE (w:ClusterWrite {id: $id})', { id: 'x' }),
        message(BoltSignature.RESET),
        message(BoltSignature.BEGIN, map({ mode: 'r', db: 'neo4j' })),
        runAndPull('MATCH (m:ClusterMember) RETURN m.name AS member'),
        message(BoltSignature.COMMIT),
      ]),
    );
    const refused = await expectSignature(client, BoltSignature.FAILURE, 'write BEGIN');
    assert.equal(refused.get('neo4j_code'), NOT_A_LEADER_CODE);
    await expectSignature(client, BoltSignature.IGNORED, 'RUN after NotALeader');
    await expectSignature(client, BoltSignature.IGNORED, 'PULL after NotALeader');
    await expectSignature(client, BoltSignature.SUCCESS, 'RESET');
    await expectSignature(client, BoltSignature.SUCCESS, 'read BEGIN');
    assert.deepEqual((await expectSignature(client, BoltSignature.SUCCESS, 'RUN')).get('fields'), ['member']);
    assert.deepEqual((await client.readMessage()).fields, [['follower']]);
    await expectSignature(client, BoltSignature.SUCCESS, 'PULL');
    await expectSignature(client, BoltSignature.SUCCESS, 'COMMIT');
    assert.equal(member.notALeaderAnswers - refusedBefore, 1);
    client.close();
  });

  it('answers a write auto-commit RUN with NotALeader and a read one with its name', async () => {
    const refusedBefore = member.notALeaderAnswers;
    const readsBefore = member.readsServed;
    const client = await loggedInBolt58(member.address, { userAgent: USER_AGENT, ...LOGIN });
    client.write(
      Buffer.concat([
        message(BoltSignature.RUN, 'CREATE (w:ClusterWrite)', map({}), map({})),
        message(BoltSignature.RESET),
        message(BoltSignature.RUN, 'MATCH (m:ClusterMember) RETURN m.name AS member', map({}), map({ mode: 'r' })),
        message(BoltSignature.PULL, map({ n: -1 })),
      ]),
    );
    await expectSignature(client, BoltSignature.FAILURE, 'write RUN');
    await expectSignature(client, BoltSignature.SUCCESS, 'RESET');
    await expectSignature(client, BoltSignature.SUCCESS, 'read RUN');
    assert.deepEqual((await client.readMessage()).fields, [['follower']]);
    const summary = await expectSignature(client, BoltSignature.SUCCESS, 'PULL');
    assert.equal(summary.get('has_more'), false);
    assert.deepEqual([member.notALeaderAnswers - refusedBefore, member.readsServed - readsBefore], [1, 1]);
    client.close();
  });
});

describe('the JavaScript driver against the scripted router and member', () => {
  let router: ScriptedRouter;
  let member: NotALeaderMember;
  before(async () => {
    member = await startNotALeaderMember({ ...LOGIN, name: 'follower' });
    router = await startScriptedRouter({ ...LOGIN, table: table() });
  });
  after(async () => {
    await router?.close();
    await member?.close();
  });

  it('routes a read to the table READ member and re-fetches the table after NotALeader on a write', async () => {
    router.setTable({
      ttlSeconds: 300,
      routers: [router.address],
      writers: [member.address],
      readers: [member.address],
    });
    const driver = neo4j.driver(router.uri, neo4j.auth.basic(LOGIN.username, LOGIN.password), {
      logging: { level: 'error', logger: () => {} },
    });
    try {
      const read = await driver.executeQuery(
        'MATCH (m:ClusterMember) RETURN m.name AS member',
        {},
        {
          routing: neo4j.routing.READ,
        },
      );
      assert.deepEqual(
        read.records.map((record) => record.get('member')),
        ['follower'],
      );
      const routesAfterRead = router.routeRequests.total;
      assert.ok(routesAfterRead >= 1, 'the driver asked the router for a table');

      const session = driver.session({ defaultAccessMode: neo4j.session.WRITE });
      await assert.rejects(session.run('CREATE (w:ClusterWrite {id: 1})'), (error: { code?: string }) => {
        assert.equal(
          error.code,
          'SessionExpired',
          'the driver reports NotALeader as SessionExpired, having forgotten the writer',
        );
        return true;
      });
      await session.close();
      assert.equal(member.notALeaderAnswers >= 1, true);

      const again = driver.session({ defaultAccessMode: neo4j.session.WRITE });
      await assert.rejects(again.run('CREATE (w:ClusterWrite {id: 2})'));
      await again.close();
      assert.ok(router.routeRequests.total > routesAfterRead, 'a table with its writer forgotten is fetched again');
    } finally {
      await driver.close();
    }
  });
});
