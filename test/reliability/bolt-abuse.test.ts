/**
 * Clients that misbehave on purpose: half-open and drip-fed handshakes, a flood of connections far
 * past proxy.maxConnections, and oversized messages sent while a healthy client keeps querying. Each
 * is closed or refused on its own, counted and logged, and the process never sees an uncaught error.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import neo4j from 'neo4j-driver';
import { BoltSignature } from '../../src/proxy/bolt/index.ts';
import { eventually, startTestProxy, type TestProxy } from '../proxy/support.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import {
  expectOneValue,
  handshakeOffers,
  loggedInBolt58,
  map,
  message,
  RawBoltClient,
  runAndPull,
} from '../support/raw-bolt.ts';
import { type UncaughtWatch, watchUncaught } from '../support/uncaught.ts';

/**
 * Long enough that a loaded machine handshakes the flood test's 50 clients in time (at 300 ms an
 * accepted client could miss it and free its slot for a refused one), short enough for the drip below.
 */
const HANDSHAKE_TIMEOUT_MS = 1000;
/** The drip's pause between handshake bytes: each inside the timeout, all 20 longer than the wait for the close. */
const DRIP_PAUSE_MS = HANDSHAKE_TIMEOUT_MS * 0.8;
const MAX_CONNECTIONS = 10;
const MAX_MESSAGE_BYTES = 1024;

let server: TestNeo4j;
let proxy: TestProxy;
let uncaught: UncaughtWatch;

before(async () => {
  uncaught = watchUncaught();
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
  uncaught.stop();
  assert.deepEqual(uncaught.errors, [], 'no uncaught exception or rejection');
});

function loggedIn(address: string): Promise<RawBoltClient> {
  return loggedInBolt58(address, {
    userAgent: 'abuse-test/1.0',
    username: server.username,
    password: server.password,
  });
}

async function returnOne(client: RawBoltClient, value: number): Promise<void> {
  client.write(runAndPull('RETURN $v AS v', { v: value }));
  await expectOneValue(client, value);
}

const rejected = (reason: string) => proxy.metric('neo4j_proxy_connections_rejected_total', { reason });

describe('Bolt abuse', () => {
  it('half-open and drip-fed handshakes are closed by the handshake timeout, not kept alive by each byte', async () => {
    const before = await rejected('handshake_timeout');
    const halfOpen = await RawBoltClient.connect(proxy.proxy.address);
    halfOpen.write(Buffer.from([0x60, 0x60]));
    const drip = await RawBoltClient.connect(proxy.proxy.address);
    const offers = handshakeOffers([8, 8, 5]);
    // One byte every DRIP_PAUSE_MS would take 16 s for the 20 handshake bytes, while no pause reaches the
    // timeout: a timeout restarted by each byte would leave the drip open past the wait below.
    const dripping = (async () => {
      for (const byte of offers) {
        if (drip.ended) return;
        drip.socket.write(Buffer.from([byte]));
        await new Promise((resolve) => setTimeout(resolve, DRIP_PAUSE_MS));
      }
    })();
    // Closed by the timeout, whatever the machine's load; the reason is checked below.
    const closeWithinMs = HANDSHAKE_TIMEOUT_MS * 10;
    await Promise.all([halfOpen.waitForClose(closeWithinMs), drip.waitForClose(closeWithinMs)]);
    await dripping;
    await eventually(async () => assert.equal((await rejected('handshake_timeout')) - before, 2));
    assert.ok(
      proxy.logs.some((line) => line.includes('"reason":"handshake_timeout"')),
      'logged',
    );
  });

  it('a flood of connections past maxConnections: the excess is refused and counted, the rest keep working', async () => {
    const before = await rejected('limit');
    const acceptedBefore = proxy.proxy.status().acceptedConnections;
    const flood = 5 * MAX_CONNECTIONS;
    const attempts = await Promise.allSettled(Array.from({ length: flood }, () => loggedIn(proxy.proxy.address)));
    const reasons = attempts.flatMap((attempt) => (attempt.status === 'rejected' ? [String(attempt.reason)] : []));
    const admitted = attempts.flatMap((attempt) => (attempt.status === 'fulfilled' ? [attempt.value] : []));
    try {
      assert.equal(admitted.length, MAX_CONNECTIONS, [...new Set(reasons)].join('\n'));
      // Every connection is either accepted or refused and counted. On a saturated machine an accepted
      // client can miss the handshake deadline and free its slot for a later one, so the split is not
      // always exactly MAX_CONNECTIONS accepted; the sum always is the flood.
      const accepted = proxy.proxy.status().acceptedConnections - acceptedBefore;
      assert.ok(accepted >= MAX_CONNECTIONS, `${accepted} accepted`);
      await eventually(async () => assert.equal((await rejected('limit')) - before, flood - accepted));
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
