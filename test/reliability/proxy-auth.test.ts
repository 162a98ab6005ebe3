/**
 * The proxy forwards bytes unchanged, so authentication stays Neo4j's job: a client that logs in
 * wrongly, never logs in (HELLO without LOGON on Bolt 5.1+) or skips HELLO altogether must never get
 * a query answered, and the proxy must not record one as successful.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import neo4j from 'neo4j-driver';
import { BoltSignature } from '../../src/proxy/bolt/index.ts';
import { startTestProxy, type TestProxy } from '../proxy/support.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import {
  connectBolt58,
  hello,
  logon,
  type RawBoltClient,
  type ReceivedMessage,
  runAndPull,
} from '../support/raw-bolt.ts';

const RAW_AGENT = 'raw-auth-test/1.0';
const SECRET_QUERY = 'MATCH (n) RETURN count(n) AS nodes';

let server: TestNeo4j;
let proxy: TestProxy;

before(async () => {
  server = await sharedNeo4j();
  proxy = await startTestProxy(server.uri, { handshakeTimeoutMs: 3000 });
});
after(async () => {
  await proxy?.stop();
  await releaseSharedNeo4j();
});

/** Bolt 5.8 through the manifest handshake; the client's choice is sent with `first`. */
const handshake58 = (first: Buffer[]) => connectBolt58(proxy.proxy.address, first);

/** Every message the server sends until it closes the connection or goes quiet for `quietMs`. */
async function everyReply(client: RawBoltClient, quietMs = 3000): Promise<ReceivedMessage[]> {
  const replies: ReceivedMessage[] = [];
  for (let count = 0; count < 20; count++) {
    try {
      replies.push(await client.readMessage(quietMs));
    } catch {
      break;
    }
  }
  client.close();
  return replies;
}

function names(replies: ReceivedMessage[]): string[] {
  const byCode = new Map(Object.entries(BoltSignature).map(([name, code]) => [code as number, name]));
  return replies.map((reply) => byCode.get(reply.signature) ?? String(reply.signature));
}

async function successfulQueries(): Promise<number> {
  return proxy.metric('neo4j_query_duration_seconds_count', { source: 'proxy', outcome: 'success' });
}

/** The query was never answered: no RECORD, and no SUCCESS after the replies to the handshake messages. */
function assertQueryRefused(replies: ReceivedMessage[], expectedSuccesses: number): void {
  const seen = names(replies);
  assert.ok(!seen.includes('RECORD'), `a record came back: ${seen.join(', ')}`);
  assert.equal(seen.filter((name) => name === 'SUCCESS').length, expectedSuccesses, seen.join(', '));
  assert.ok(seen.includes('FAILURE') || seen.length === expectedSuccesses, `refused: ${seen.join(', ')}`);
}

describe('authentication through the proxy', () => {
  it('a wrong password: LOGON fails and the query that follows is never run', async () => {
    const before = await successfulQueries();
    const client = await handshake58([
      hello(RAW_AGENT),
      logon(server.username, 'not-the-password'),
      runAndPull(SECRET_QUERY),
    ]);
    const replies = await everyReply(client);
    assertQueryRefused(replies, 1);
    assert.equal(names(replies)[1], 'FAILURE', names(replies).join(', '));
    assert.equal(await successfulQueries(), before);
  });

  it('HELLO without LOGON: the query is refused', async () => {
    const before = await successfulQueries();
    const client = await handshake58([hello(RAW_AGENT), runAndPull(SECRET_QUERY)]);
    const replies = await everyReply(client);
    assertQueryRefused(replies, 1);
    assert.equal(await successfulQueries(), before);
  });

  it('no HELLO at all: a RUN right after the handshake is refused', async () => {
    const before = await successfulQueries();
    const client = await handshake58([runAndPull(SECRET_QUERY)]);
    const replies = await everyReply(client);
    assertQueryRefused(replies, 0);
    assert.equal(await successfulQueries(), before);
  });

  it('a real driver with a wrong password gets an authentication error, counted as an auth failure', async () => {
    const failuresBefore = await proxy.metric('neo4j_proxy_auth_failures_total');
    const before = await successfulQueries();
    const driver = neo4j.driver(`bolt://${proxy.proxy.address}`, neo4j.auth.basic(server.username, 'wrong'), {
      logging: { level: 'error', logger: () => {} },
    });
    try {
      await assert.rejects(driver.executeQuery(SECRET_QUERY), /authentication|unauthorized/i);
    } finally {
      await driver.close();
    }
    assert.ok((await proxy.metric('neo4j_proxy_auth_failures_total')) > failuresBefore);
    assert.equal(await successfulQueries(), before);
  });

  it('the same raw client with the right password does get its answer (the refusals above are not the harness)', async () => {
    const before = await successfulQueries();
    const client = await handshake58([
      hello(RAW_AGENT),
      logon(server.username, server.password),
      runAndPull(SECRET_QUERY),
    ]);
    const replies = await everyReply(client, 1500);
    assert.deepEqual(names(replies), ['SUCCESS', 'SUCCESS', 'SUCCESS', 'RECORD', 'SUCCESS']);
    assert.equal(await successfulQueries(), before + 1);
  });
});
