/**
 * Clients that misbehave on purpose: half-open and drip-fed handshakes, a flood of connections far
 * past proxy.maxConnections, and oversized messages sent while a healthy client keeps querying. Each
 * is closed or refused on its own, counted and logged, and the process never sees an uncaught error.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import neo4j from 'neo4j-driver';
import { BoltSignature } from '../../src/proxy/bolt/index.ts';
import {
  eventually,
  handshakeOffers,
  MANIFEST_V1_OFFER,
  map,
  message,
  RawBoltClient,
  startTestProxy,
  type TestProxy,
} from '../proxy/support.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';

const HANDSHAKE_TIMEOUT_MS = 300;
const MAX_CONNECTIONS = 10;
const MAX_MESSAGE_BYTES = 1024;

let server: TestNeo4j;
let proxy: TestProxy;
const uncaught: unknown[] = [];
const recordUncaught = (error: unknown) => uncaught.push(error);

before(async () => {
  process.on('uncaughtException', recordUncaught);
  process.on('unhandledRejection', recordUncaught);
  server = await sharedNeo4j();
  proxy = await startTestProxy(server.uri, {
    handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
    maxConnections: MAX_CONNECTIONS,
    maxMessageBytes: MAX_MESSAGE_BYTES,
  });
});
after(async () => {
  await proxy?.stop();
  await releaseSharedNeo4j();
  process.off('uncaughtException', recordUncaught);
  process.off('unhandledRejection', recordUncaught);
  assert.deepEqual(uncaught, [], 'no uncaught exception or rejection');
});

const replacer = (_key: string, value: unknown) => (value instanceof Map ? Object.fromEntries(value) : value);

async function loggedIn(address: string): Promise<RawBoltClient> {
  const client = await RawBoltClient.connect(address);
  client.write(handshakeOffers(MANIFEST_V1_OFFER, [8, 8, 5]));
  assert.deepEqual([...(await client.readBytes(4))], [0, 0, 1, 0xff]);
  const rangeCount = (await client.readBytes(1))[0] ?? 0;
  await client.readBytes(4 * rangeCount);
  while (((await client.readBytes(1))[0] ?? 0) & 0x80) {
    // capability varint continues
  }
  client.startMessages();
  client.write(
    Buffer.concat([
      Buffer.from([0, 0, 8, 5, 0]),
      message(
        BoltSignature.HELLO,
        map({ user_agent: 'abuse-test/1.0', bolt_agent: map({ product: 'abuse-test/1.0' }) }),
      ),
      message(BoltSignature.LOGON, map({ scheme: 'basic', principal: server.username, credentials: server.password })),
    ]),
  );
  for (const step of ['HELLO', 'LOGON']) {
    const reply = await client.readMessage();
    assert.equal(reply.signature, BoltSignature.SUCCESS, `${step}: ${JSON.stringify(reply.fields, replacer)}`);
  }
  return client;
}

async function returnOne(client: RawBoltClient, value: number): Promise<void> {
  client.write(
    Buffer.concat([
      message(BoltSignature.RUN, 'RETURN $v AS v', map({ v: value }), map({})),
      message(BoltSignature.PULL, map({ n: -1 })),
    ]),
  );
  assert.equal((await client.readMessage()).signature, BoltSignature.SUCCESS);
  assert.deepEqual((await client.readMessage()).fields, [[value]]);
  assert.equal((await client.readMessage()).signature, BoltSignature.SUCCESS);
}

const rejected = (reason: string) => proxy.metric('neo4j_proxy_connections_rejected_total', { reason });

describe('Bolt abuse', () => {
  it('half-open and drip-fed handshakes are closed by the handshake timeout, not kept alive by each byte', async () => {
    const before = await rejected('handshake_timeout');
    const halfOpen = await RawBoltClient.connect(proxy.proxy.address);
    halfOpen.write(Buffer.from([0x60, 0x60]));
    const drip = await RawBoltClient.connect(proxy.proxy.address);
    const offers = handshakeOffers([8, 8, 5]);
    // One byte every 50 ms would take ~1 s for the 20 handshake bytes: well past the 300 ms allowed.
    const dripping = (async () => {
      for (const byte of offers) {
        if (drip.ended) return;
        drip.socket.write(Buffer.from([byte]));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    await Promise.all([halfOpen.waitForClose(HANDSHAKE_TIMEOUT_MS * 5), drip.waitForClose(HANDSHAKE_TIMEOUT_MS * 5)]);
    await dripping;
    await eventually(async () => assert.equal((await rejected('handshake_timeout')) - before, 2));
    assert.ok(
      proxy.logs.some((line) => line.includes('"reason":"handshake_timeout"')),
      'logged',
    );
  });

  it('a flood of connections past maxConnections: the excess is refused and counted, the rest keep working', async () => {
    const before = await rejected('limit');
    const flood = 5 * MAX_CONNECTIONS;
    const attempts = await Promise.allSettled(Array.from({ length: flood }, () => loggedIn(proxy.proxy.address)));
    const reasons = attempts.flatMap((attempt) => (attempt.status === 'rejected' ? [String(attempt.reason)] : []));
    const admitted = attempts.flatMap((attempt) => (attempt.status === 'fulfilled' ? [attempt.value] : []));
    try {
      assert.equal(admitted.length, MAX_CONNECTIONS, [...new Set(reasons)].join('\n'));
      // A refusal is counted when its connection is torn down, which can trail the client seeing it.
      await eventually(async () => assert.equal((await rejected('limit')) - before, flood - MAX_CONNECTIONS));
      assert.ok(
        proxy.logs.some((line) => line.includes('refused a client connection')),
        'logged',
      );
      await Promise.all(admitted.map((client, index) => returnOne(client, index)));
    } finally {
      for (const client of admitted) client.close();
    }
    await eventually(() => assert.equal(proxy.proxy.activeConnections, 0));
    const driver = neo4j.driver(proxy.boltUri, neo4j.auth.basic(server.username, server.password));
    try {
      await driver.executeQuery('RETURN 1');
    } finally {
      await driver.close();
    }
  });

  it('oversized messages close only their own connection while a healthy client keeps querying', async () => {
    // The previous test's clients must be gone, or this one's connections would meet the limit.
    await eventually(() => assert.equal(proxy.proxy.activeConnections, 0));
    const before = await rejected('message_too_large');
    const healthy = await loggedIn(proxy.proxy.address);
    let healthyQueries = 0;
    let stop = false;
    const healthyLoop = (async () => {
      while (!stop && healthyQueries < 1000) {
        await returnOne(healthy, healthyQueries);
        healthyQueries++;
      }
    })();
    const attackers = 5;
    await Promise.all(
      Array.from({ length: attackers }, async (_, index) => {
        const attacker = await loggedIn(proxy.proxy.address);
        const note = 'z'.repeat(MAX_MESSAGE_BYTES * (index + 2));
        attacker.write(message(BoltSignature.BEGIN, map({ tx_metadata: map({ note }) })));
        await attacker.waitForClose();
      }),
    );
    stop = true;
    await healthyLoop;
    assert.ok(healthyQueries > 0);
    await returnOne(healthy, 7);
    healthy.close();
    await eventually(async () => assert.equal((await rejected('message_too_large')) - before, attackers));
    assert.ok(
      proxy.logs.some((line) => line.includes('"reason":"message_too_large"')),
      'logged',
    );
  });
});
