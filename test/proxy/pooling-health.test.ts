/**
 * Pool health settings against the real Neo4j 5.26 and the real JS driver: idleTimeoutMs closes an
 * unused upstream (minIdle keeps some), maxLifetimeMs closes upstreams spread over time and never cuts
 * one a client is using, and livenessCheckAfterIdleMs sends a RESET before an upstream idle that long is
 * lent, replacing one that no longer answers without failing the client. The dead upstream is made by a
 * relay that stops passing bytes and tells neither end, as a firewall or NAT dropping an idle
 * connection does (a fault Neo4j cannot be made to cause; a Neo4j that closes its socket is noticed at
 * once, without any check).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import neo4j, { type Driver } from 'neo4j-driver';
import { BoltSignature } from '../../src/proxy/bolt/index.ts';
import { type BoltRelay, sessions, startBoltRelay } from '../support/bolt-relay.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { ownTransaction, perTask, quiet } from './pooling-support.ts';
import { eventually, startTestProxy, type TestProxy } from './support.ts';

let server: TestNeo4j;

before(async () => {
  server = await sharedNeo4j();
});
after(async () => {
  await releaseSharedNeo4j();
});

function auth() {
  return neo4j.auth.basic(server.username, server.password);
}

async function closed(proxy: TestProxy, reason: string): Promise<number> {
  return proxy.metric('neo4j_proxy_pool_upstreams_closed_total', { reason });
}

async function upstreams(proxy: TestProxy, state: string): Promise<number> {
  return proxy.metric('neo4j_proxy_pool_upstreams', { state });
}

/** `count` clients, each in its own explicit transaction at the same time, so each holds an upstream. */
async function concurrentTransactions(uri: string, count: number): Promise<Set<string>> {
  const ids = await Promise.all(
    Array.from({ length: count }, () =>
      perTask(uri, auth(), (driver) =>
        driver.session().executeRead(async (tx) => {
          const own = await ownTransaction(tx);
          await delay(300);
          return own.connectionId;
        }),
      ),
    ),
  );
  return new Set(ids);
}

describe('idleTimeoutMs and minIdle', () => {
  it('an upstream unused for idleTimeoutMs is closed with reason idle_timeout; minIdle of them stay open', async () => {
    const proxy = await startTestProxy(server.uri, {
      pooling: { mode: 'session', idleTimeoutMs: 1000, minIdle: 1 },
    });
    try {
      const ids = await concurrentTransactions(proxy.boltUri, 3);
      assert.equal(ids.size, 3, 'three clients at once hold three upstreams');
      // Their three, and the one minIdle pre-warmed while they were lent (pooling-prewarm.test.ts): all
      // but one close.
      await eventually(
        async () => {
          assert.equal(await closed(proxy, 'idle_timeout'), 3);
          assert.equal(await upstreams(proxy, 'idle'), 1);
        },
        { timeoutMs: 10_000 },
      );
      // The sweep runs every second: the kept one survives several more of them.
      await delay(2500);
      assert.equal(await closed(proxy, 'idle_timeout'), 3);
      assert.equal(await upstreams(proxy, 'idle'), 1);
      // And it is the one the next client gets, without a new connection.
      const openedBefore = await proxy.metric('neo4j_proxy_pool_checkouts_total', { result: 'opened' });
      await perTask(proxy.boltUri, auth(), (driver) => driver.executeQuery('RETURN 1'));
      assert.equal(await proxy.metric('neo4j_proxy_pool_checkouts_total', { result: 'opened' }), openedBefore);
    } finally {
      await proxy.stop();
    }
  });

  it('with minIdle 0 the pool empties', async () => {
    const proxy = await startTestProxy(server.uri, { pooling: { mode: 'transaction', idleTimeoutMs: 1000 } });
    try {
      await perTask(proxy.boltUri, auth(), (driver) => driver.executeQuery('RETURN 1'));
      assert.equal(await upstreams(proxy, 'idle'), 1);
      await eventually(async () => assert.equal(await closed(proxy, 'idle_timeout'), 1), { timeoutMs: 10_000 });
      assert.equal(await upstreams(proxy, 'idle'), 0);
    } finally {
      await proxy.stop();
    }
  });
});

describe('maxLifetimeMs', () => {
  it('upstreams opened together close at different moments, and one in use is closed only when returned', async () => {
    const lifetimeMs = 12_000;
    const proxy = await startTestProxy(server.uri, {
      pooling: { mode: 'session', maxLifetimeMs: lifetimeMs, maxUpstreams: 8 },
    });
    const observer = neo4j.driver(server.uri, auth(), quiet);
    const holder = neo4j.driver(proxy.boltUri, auth(), { ...quiet, maxConnectionPoolSize: 1 });
    try {
      // The holder's transaction starts first, so its upstream is one of the eight opened together.
      const session = holder.session();
      const tx = session.beginTransaction();
      const first = await ownTransaction(tx);
      const ids = await concurrentTransactions(proxy.boltUri, 7);
      assert.equal(ids.size, 7);
      assert.ok(!ids.has(first.connectionId));

      const closeMoments: number[] = [];
      const startedMs = Date.now();
      while (closeMoments.length < 7 && Date.now() - startedMs < lifetimeMs + 5000) {
        const count = await closed(proxy, 'max_lifetime');
        while (closeMoments.length < count) closeMoments.push(Date.now());
        await delay(100);
      }
      assert.equal(closeMoments.length, 7, 'every returned upstream reached its lifetime');
      const spreadMs = (closeMoments.at(-1) ?? 0) - (closeMoments[0] ?? 0);
      assert.ok(spreadMs >= 900, `the seven closed within ${spreadMs} ms of each other: not spread`);

      // The holder's upstream is past its lifetime too, but lent: its transaction goes on, on the same connection.
      const second = await ownTransaction(tx);
      assert.equal(second.connectionId, first.connectionId);
      assert.equal(second.transactionId, first.transactionId);
      await tx.commit();
      assert.equal(await closed(proxy, 'max_lifetime'), 7);
      await session.close();
      await holder.close();
      await eventually(async () => assert.equal(await closed(proxy, 'max_lifetime'), 8));
    } finally {
      await holder.close();
      await observer.close();
      await proxy.stop();
    }
  });
});

describe('livenessCheckAfterIdleMs', () => {
  let relay: BoltRelay;
  before(async () => {
    relay = await startBoltRelay(server.uri);
  });
  after(async () => {
    await relay?.close();
  });

  it('transaction mode: an upstream idle past the check gets a RESET before it is lent; a dead one is replaced', async () => {
    const proxy = await startTestProxy(relay.uri, {
      upstreamConnectTimeoutMs: 1000,
      pooling: { mode: 'transaction', livenessCheckAfterIdleMs: 300 },
    });
    const driver: Driver = neo4j.driver(proxy.boltUri, auth(), { ...quiet, maxConnectionPoolSize: 1 });
    try {
      const before = sessions(relay).length;
      await driver.executeQuery('RETURN 1');
      assert.equal(sessions(relay).length, before + 1, 'one upstream');
      const upstream = sessions(relay)[before];
      assert.ok(upstream);
      // Not idle long enough: lent as it is.
      const sentFirst = upstream.requests.length;
      await driver.executeQuery('RETURN 2');
      assert.deepEqual(upstream.requests.slice(sentFirst), [
        BoltSignature.BEGIN,
        BoltSignature.RUN,
        BoltSignature.PULL,
        BoltSignature.COMMIT,
      ]);
      const sentBefore = upstream.requests.length;
      await delay(600);
      await driver.executeQuery('RETURN 3');
      // executeQuery is a managed transaction: BEGIN, RUN, PULL, COMMIT, with the proxy's RESET ahead of it.
      assert.deepEqual(
        upstream.requests.slice(sentBefore),
        [BoltSignature.RESET, BoltSignature.BEGIN, BoltSignature.RUN, BoltSignature.PULL, BoltSignature.COMMIT],
        'a RESET went ahead of the transaction',
      );

      upstream.silence();
      await delay(600);
      const { records } = await driver.executeQuery('RETURN 4 AS four');
      assert.equal(records[0]?.get('four').toNumber(), 4);
      assert.equal(sessions(relay).length, before + 2, 'a new upstream replaced the silent one');
      assert.equal(await closed(proxy, 'reset_failed'), 1);
    } finally {
      await driver.close();
      await proxy.stop();
    }
  });

  it('session mode: a client whose login lands on a silently dead upstream gets a fresh one', async () => {
    const proxy = await startTestProxy(relay.uri, { upstreamConnectTimeoutMs: 1000, pooling: { mode: 'session' } });
    try {
      const before = sessions(relay).length;
      await perTask(proxy.boltUri, auth(), (driver) => driver.executeQuery('RETURN 1'));
      assert.equal(sessions(relay).length, before + 1);
      // Back in the pool after its RESET, then silenced.
      await eventually(async () => assert.equal(await upstreams(proxy, 'idle'), 1));
      sessions(relay)[before]?.silence();
      const { records } = await perTask(proxy.boltUri, auth(), (driver) => driver.executeQuery('RETURN 5 AS five'));
      assert.equal(records[0]?.get('five').toNumber(), 5);
      assert.equal(sessions(relay).length, before + 2);
      // The silent one is gone, the new one back in the pool.
      await eventually(async () => assert.equal(await upstreams(proxy, 'idle'), 1));
      assert.equal(await closed(proxy, 'server_closed'), 1);
    } finally {
      await proxy.stop();
    }
  });
});
