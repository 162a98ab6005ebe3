/**
 * Session-mode pooling against the real Neo4j 5.26 with real drivers and raw Bolt: per-task drivers
 * share a few upstreams (Neo4j's own connection ids say so), every login is Neo4j's verdict (a wrong
 * password is refused with Neo4j's own error even right after a correct login, with the cache on too),
 * two users interleaved on one upstream each see themselves, the client's GOODBYE never reaches a
 * pooled upstream, a client killed inside a transaction leaves nothing behind, the limits make clients
 * wait and then answer a transient error, and the sidecar as shipped (the real CLI, defaults) pools.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import neo4j, { type AuthToken, type Driver } from 'neo4j-driver';
import { BoltSignature } from '../../src/proxy/bolt/index.ts';
import { POOL_TIMEOUT_CODE } from '../../src/proxy/index.ts';
import { spawnSidecarCli } from '../support/cli.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { parseExposition } from '../support/prometheus-text.ts';
import {
  connectBolt58,
  describeMessage,
  hello,
  loggedInBolt58,
  logon,
  map,
  message,
  type RawBoltClient,
} from '../support/raw-bolt.ts';
import { openTransactionsMarked } from './pooling-support.ts';
import { eventually, startTestProxy, type TestProxy } from './support.ts';

const quiet = { logging: { level: 'error' as const, logger: () => {} } };
const ALICE = { user: 'pool_alice', password: 'alice-secret-1' };

let server: TestNeo4j;
let direct: Driver;

before(async () => {
  server = await sharedNeo4j();
  direct = neo4j.driver(server.uri, neo4j.auth.basic(server.username, server.password), quiet);
  await direct.executeQuery(
    `CREATE OR REPLACE USER ${ALICE.user} SET PLAINTEXT PASSWORD '${ALICE.password}' CHANGE NOT REQUIRED`,
    {},
    { database: 'system' },
  );
});
after(async () => {
  await direct?.close();
  await releaseSharedNeo4j();
});

function auth(user = server.username, password = server.password): AuthToken {
  return neo4j.auth.basic(user, password);
}

/** Neo4j's id of the connection this query runs on, read from Neo4j itself. */
async function serverConnectionId(driver: Driver): Promise<string> {
  const marker = `pool-probe-${randomUUID()}`;
  const { records } = await driver.executeQuery(
    `SHOW TRANSACTIONS YIELD connectionId, currentQuery WHERE currentQuery CONTAINS '${marker}' RETURN connectionId`,
  );
  assert.equal(records.length, 1);
  return String(records[0]?.get('connectionId'));
}

/** One driver for one task, as a per-task worker opens it. */
async function perTask<T>(uri: string, work: (driver: Driver) => Promise<T>, token = auth()): Promise<T> {
  const driver = neo4j.driver(uri, token, { ...quiet, maxConnectionPoolSize: 1 });
  try {
    return await work(driver);
  } finally {
    await driver.close();
  }
}

/**
 * A raw client creates a node inside a transaction, reads the replies and closes without committing.
 * The transaction carries `label` as its pooltest metadata, so openTransactionsMarked finds it alone:
 * other test files share the server and may have transactions of their own open meanwhile.
 */
async function createInsideTransactionThenVanish(address: string, label: string, userAgent: string): Promise<void> {
  const raw = await loggedInBolt58(address, { userAgent, username: server.username, password: server.password });
  raw.write(
    Buffer.concat([
      message(BoltSignature.BEGIN, map({ tx_metadata: map({ pooltest: label }) })),
      message(BoltSignature.RUN, `CREATE (:${label}) RETURN 1`, map({}), map({})),
      message(BoltSignature.PULL, map({ n: -1 })),
    ]),
  );
  for (let reply = 0; reply < 4; reply++) await raw.readMessage();
  raw.close();
}

async function rawIdAndGoodbye(client: RawBoltClient): Promise<string> {
  const marker = `pool-probe-${randomUUID()}`;
  client.write(
    Buffer.concat([
      message(
        BoltSignature.RUN,
        `SHOW TRANSACTIONS YIELD connectionId, currentQuery WHERE currentQuery CONTAINS '${marker}' RETURN connectionId`,
        map({}),
        map({}),
      ),
      message(BoltSignature.PULL, map({ n: -1 })),
    ]),
  );
  const run = await client.readMessage();
  assert.equal(run.signature, BoltSignature.SUCCESS, describeMessage(run));
  const record = await client.readMessage();
  assert.equal(record.signature, BoltSignature.RECORD, describeMessage(record));
  assert.equal((await client.readMessage()).signature, BoltSignature.SUCCESS);
  const row = record.fields[0];
  assert.ok(Array.isArray(row));
  return String(row[0]);
}

describe('session pooling', () => {
  let proxy: TestProxy;
  before(async () => {
    proxy = await startTestProxy(server.uri, { pooling: { mode: 'session', maxUpstreams: 4 } });
  });
  after(async () => {
    await proxy?.stop();
  });

  it('per-task drivers, one after another, run on a handful of Neo4j connections', async () => {
    const ids = new Set<string>();
    for (let task = 0; task < 30; task++) ids.add(await perTask(proxy.boltUri, serverConnectionId));
    assert.ok(ids.size <= 4, `30 per-task drivers used ${ids.size} Neo4j connections`);
    assert.ok((await proxy.metric('neo4j_proxy_pool_checkouts_total', { result: 'reauthenticated' })) >= 20);
    assert.ok((await proxy.metric('neo4j_proxy_pool_logins_total', { outcome: 'verified' })) >= 30);
  });

  it('more concurrent clients than upstreams: they wait their turn, each alone on its upstream', async () => {
    const ids = await Promise.all(
      Array.from({ length: 16 }, () =>
        perTask(proxy.boltUri, async (driver) => {
          const session = driver.session();
          try {
            // Two statements in one transaction: a second client on the same upstream would break it.
            return await session.executeWrite(async (tx) => {
              const first = await tx.run('RETURN 1 AS one');
              assert.equal(first.records[0]?.get('one').toNumber(), 1);
              const marker = `pool-probe-${randomUUID()}`;
              const result = await tx.run(
                `SHOW TRANSACTIONS YIELD connectionId, currentQuery WHERE currentQuery CONTAINS '${marker}' RETURN connectionId`,
              );
              return String(result.records[0]?.get('connectionId'));
            });
          } finally {
            await session.close();
          }
        }),
      ),
    );
    assert.equal(ids.length, 16);
    assert.ok(new Set(ids).size <= 4, `16 clients used ${new Set(ids).size} Neo4j connections, above maxUpstreams 4`);
    const states = proxy.proxy.status().pool?.states ?? {};
    assert.ok((states.idle ?? 0) + (states.in_use ?? 0) + (states.resetting ?? 0) <= 4);
  });

  it("a wrong password is refused with Neo4j's own error, also right after a correct login", async () => {
    const directError = await perTask(
      server.uri,
      (driver) => driver.executeQuery('RETURN 1'),
      auth(server.username, 'wrong'),
    ).then(
      () => assert.fail('direct login with a wrong password succeeded'),
      (error: { code?: string; message?: string }) => error,
    );
    for (let attempt = 0; attempt < 3; attempt++) {
      await perTask(proxy.boltUri, serverConnectionId);
      const refusedBefore = await proxy.metric('neo4j_proxy_pool_logins_total', { outcome: 'refused' });
      await assert.rejects(
        perTask(proxy.boltUri, (driver) => driver.executeQuery('RETURN 1'), auth(server.username, 'wrong')),
        (error: { code?: string; message?: string }) => {
          assert.equal(error.code, 'Neo.ClientError.Security.Unauthorized');
          assert.equal(error.message, directError.message);
          return true;
        },
      );
      assert.equal(await proxy.metric('neo4j_proxy_pool_logins_total', { outcome: 'refused' }), refusedBefore + 1);
    }
  });

  it('two users interleaved on one upstream: SHOW CURRENT USER is right at every checkout', async () => {
    const single = await startTestProxy(server.uri, { pooling: { mode: 'session', maxUpstreams: 1 } });
    try {
      const ids = new Set<string>();
      for (let round = 0; round < 6; round++) {
        for (const [user, password] of [
          [server.username, server.password],
          [ALICE.user, ALICE.password],
        ] as const) {
          const seen = await perTask(
            single.boltUri,
            async (driver) => {
              ids.add(await serverConnectionId(driver));
              const { records } = await driver.executeQuery('SHOW CURRENT USER YIELD user', {}, { database: 'system' });
              return records[0]?.get('user');
            },
            auth(user, password),
          );
          assert.equal(seen, user, `round ${round}`);
        }
      }
      assert.equal(ids.size, 1, 'every checkout used the one upstream');
      assert.ok((await single.metric('neo4j_proxy_pool_checkouts_total', { result: 'reauthenticated' })) >= 10);
    } finally {
      await single.stop();
    }
  });

  it('the client GOODBYE never reaches a pooled upstream: the next client gets the same Neo4j connection', async () => {
    const single = await startTestProxy(server.uri, { pooling: { mode: 'session', maxUpstreams: 1 } });
    try {
      const ids: string[] = [];
      for (let client = 0; client < 5; client++) {
        const raw = await loggedInBolt58(single.proxy.address, {
          userAgent: 'goodbye-pool-test/1.0',
          username: server.username,
          password: server.password,
        });
        ids.push(await rawIdAndGoodbye(raw));
        raw.write(message(BoltSignature.GOODBYE));
        // The proxy, not Neo4j, closes the client.
        await raw.waitForClose();
      }
      assert.equal(new Set(ids).size, 1, `GOODBYE closed the upstream: Neo4j connections ${ids.join(', ')}`);
      assert.equal(await single.metric('neo4j_proxy_pool_upstreams_closed_total'), 0);
      await eventually(async () => {
        assert.equal(
          await single.metric('neo4j_proxy_client_connections_closed_total', { reason: 'client_closed' }),
          5,
        );
      });
    } finally {
      await single.stop();
    }
  });

  it('a GOODBYE sent a byte at a time never completes on the upstream: the pool closes that one itself', async () => {
    const single = await startTestProxy(server.uri, { pooling: { mode: 'session', maxUpstreams: 1 } });
    try {
      const raw = await loggedInBolt58(single.proxy.address, {
        userAgent: 'goodbye-pool-test/1.0',
        username: server.username,
        password: server.password,
      });
      const first = await rawIdAndGoodbye(raw);
      // Its first bytes went upstream before the proxy could tell them from a request's.
      await raw.writeByteByByte(message(BoltSignature.GOODBYE));
      await raw.waitForClose();
      await eventually(async () => {
        assert.equal(
          await single.metric('neo4j_proxy_pool_upstreams_closed_total', { reason: 'client_left_mid_message' }),
          1,
        );
      });
      // Neo4j never saw a whole GOODBYE (the pool's RESET would have completed it): the pool closed it, not Neo4j.
      assert.equal(await single.metric('neo4j_proxy_pool_upstreams_closed_total'), 1);
      const next = await loggedInBolt58(single.proxy.address, {
        userAgent: 'goodbye-pool-test/1.0',
        username: server.username,
        password: server.password,
      });
      assert.notEqual(await rawIdAndGoodbye(next), first);
      next.close();
    } finally {
      await single.stop();
    }
  });

  it('clients gone while their login is checked leave no connection behind', { timeout: 60_000 }, async () => {
    // One upstream for three: the second HELLO's wait ends on the first's recorded reply, and its
    // wake-up goes on to the third, which would otherwise sit out acquireTimeoutMs.
    const single = await startTestProxy(server.uri, { pooling: { mode: 'session', maxUpstreams: 1 } });
    try {
      for (let client = 0; client < 3; client++) {
        const raw = await connectBolt58(single.proxy.address, [
          hello('login-leave-test/1.0'),
          logon(server.username, server.password),
        ]);
        // Gone before (or while) the proxy answers HELLO and LOGON: the first HELLO opens an upstream.
        raw.close();
      }
      await eventually(() => assert.equal(single.proxy.status().activeConnections, 0), 10_000);
      const raw = await loggedInBolt58(single.proxy.address, {
        userAgent: 'login-leave-test/1.0',
        username: server.username,
        password: server.password,
      });
      assert.ok((await rawIdAndGoodbye(raw)).length > 0);
      raw.close();
    } finally {
      await single.stop();
    }
  });

  it('a client killed inside a transaction: nothing committed, no transaction left, the next client is clean', async () => {
    const single = await startTestProxy(server.uri, { pooling: { mode: 'session', maxUpstreams: 1 } });
    const label = `Killed${randomUUID().replaceAll('-', '')}`;
    try {
      await createInsideTransactionThenVanish(single.proxy.address, label, 'killed-tx-test/1.0');
      const next = await perTask(single.boltUri, async (driver) => {
        const open = (await openTransactionsMarked(driver, label)).length;
        const created = await driver.executeQuery(`MATCH (n:${label}) RETURN count(n) AS created`);
        return { open, created: created.records[0]?.get('created').toNumber() };
      });
      assert.deepEqual(next, { open: 0, created: 0 });
      const { records } = await direct.executeQuery(`MATCH (n:${label}) RETURN count(n) AS created`);
      assert.equal(records[0]?.get('created').toNumber(), 0);
      assert.ok((await single.metric('neo4j_proxy_pool_checkouts_total', { result: 'reauthenticated' })) >= 1);
    } finally {
      await single.stop();
    }
  });

  it('all upstreams busy past acquireTimeoutMs: the waiting client gets a transient error, then recovers', async () => {
    const single = await startTestProxy(server.uri, {
      pooling: { mode: 'session', maxUpstreams: 1, acquireTimeoutMs: 300 },
    });
    const holder = neo4j.driver(single.boltUri, auth(), quiet);
    try {
      const session = holder.session();
      const tx = await session.beginTransaction();
      await tx.run('RETURN 1');
      await assert.rejects(
        perTask(single.boltUri, (driver) => driver.verifyConnectivity()),
        (error: { code?: string }) => {
          assert.equal(error.code, POOL_TIMEOUT_CODE);
          return true;
        },
      );
      assert.equal(await single.metric('neo4j_proxy_pool_checkouts_total', { result: 'timed_out' }), 1);
      await tx.commit();
      await session.close();
      await holder.close();
      assert.equal(
        await perTask(single.boltUri, async (driver) => (await serverConnectionId(driver)).length > 0),
        true,
      );
    } finally {
      await holder.close();
      await single.stop();
    }
  });

  it('with authCacheSeconds a repeated login skips the round trip, and a wrong password is still refused', async () => {
    const cached = await startTestProxy(server.uri, {
      pooling: { mode: 'session', maxUpstreams: 1, authCacheSeconds: 60 },
    });
    try {
      for (let task = 0; task < 5; task++) await perTask(cached.boltUri, serverConnectionId);
      assert.ok((await cached.metric('neo4j_proxy_pool_logins_total', { outcome: 'cached' })) >= 3);
      await assert.rejects(
        perTask(cached.boltUri, (driver) => driver.executeQuery('RETURN 1'), auth(server.username, 'wrong')),
        (error: { code?: string }) => error.code === 'Neo.ClientError.Security.Unauthorized',
      );
      assert.equal(await cached.metric('neo4j_proxy_pool_logins_total', { outcome: 'refused' }), 1);
    } finally {
      await cached.stop();
    }
  });
});

describe('transaction pooling', () => {
  let proxy: TestProxy;
  before(async () => {
    proxy = await startTestProxy(server.uri, { pooling: { mode: 'transaction', maxUpstreams: 3 } });
  });
  after(async () => {
    await proxy?.stop();
  });

  it('many open client connections share a few Neo4j connections, each transaction alone on its upstream', async () => {
    const clients = 20;
    const drivers = Array.from({ length: clients }, () =>
      neo4j.driver(proxy.boltUri, auth(), { ...quiet, maxConnectionPoolSize: 1 }),
    );
    try {
      const ids = new Set<string>();
      for (let round = 0; round < 3; round++) {
        const results = await Promise.all(
          drivers.map(async (driver, index) => {
            const session = driver.session();
            try {
              return await session.executeWrite(async (tx) => {
                const first = await tx.run('RETURN $index AS index', { index: neo4j.int(index) });
                const marker = `pool-probe-${randomUUID()}`;
                const seen = await tx.run(
                  `SHOW TRANSACTIONS YIELD connectionId, currentQuery WHERE currentQuery CONTAINS '${marker}' RETURN connectionId`,
                );
                return {
                  index: first.records[0]?.get('index').toNumber(),
                  id: String(seen.records[0]?.get('connectionId')),
                };
              });
            } finally {
              await session.close();
            }
          }),
        );
        results.forEach((result, index) => {
          assert.equal(result.index, index);
          ids.add(result.id);
        });
      }
      assert.equal(proxy.proxy.status().activeConnections, clients, 'every client kept its connection');
      assert.ok(
        ids.size <= 3,
        `${clients} client connections used ${ids.size} Neo4j connections, above maxUpstreams 3`,
      );
    } finally {
      await Promise.all(drivers.map((driver) => driver.close()));
    }
  });

  it('between transactions a client holds no upstream; RESET and a failed query are handled as Neo4j would', async () => {
    const raw = await loggedInBolt58(proxy.proxy.address, {
      userAgent: 'tx-mode-test/1.0',
      username: server.username,
      password: server.password,
    });
    try {
      const inUse = () => proxy.proxy.status().pool?.states.in_use ?? 0;
      await eventually(() => assert.equal(inUse(), 0));
      raw.write(
        Buffer.concat([
          message(BoltSignature.RUN, 'RETURN 1/0', map({}), map({})),
          message(BoltSignature.PULL, map({ n: -1 })),
        ]),
      );
      // The RUN is accepted; the division fails as the PULL streams.
      assert.equal((await raw.readMessage()).signature, BoltSignature.SUCCESS);
      assert.equal((await raw.readMessage()).signature, BoltSignature.FAILURE);
      raw.write(message(BoltSignature.RESET));
      assert.equal((await raw.readMessage()).signature, BoltSignature.SUCCESS);
      assert.equal(await rawIdAndGoodbye(raw).then((id) => id.length > 0), true);
      await eventually(() => assert.equal(inUse(), 0));
    } finally {
      raw.close();
    }
  });

  it('a client killed inside a transaction: nothing committed, the upstream comes back clean', async () => {
    const label = `TxKilled${randomUUID().replaceAll('-', '')}`;
    await createInsideTransactionThenVanish(proxy.proxy.address, label, 'tx-killed-test/1.0');
    await eventually(async () => assert.equal((await openTransactionsMarked(direct, label)).length, 0));
    const { records } = await direct.executeQuery(`MATCH (n:${label}) RETURN count(n) AS created`);
    assert.equal(records[0]?.get('created').toNumber(), 0);
  });

  it('two users interleaved: SHOW CURRENT USER is right in every transaction', async () => {
    const users = [
      neo4j.driver(proxy.boltUri, auth(), quiet),
      neo4j.driver(proxy.boltUri, auth(ALICE.user, ALICE.password), quiet),
    ] as const;
    try {
      for (let round = 0; round < 6; round++) {
        const seen = await Promise.all(
          users.map(async (driver) => {
            const { records } = await driver.executeQuery('SHOW CURRENT USER YIELD user', {}, { database: 'system' });
            return records[0]?.get('user');
          }),
        );
        assert.deepEqual(seen, [server.username, ALICE.user], `round ${round}`);
      }
    } finally {
      await Promise.all(users.map((driver) => driver.close()));
    }
  });
});

describe('pooling as shipped', () => {
  it('the real CLI with default settings pools per-task drivers', { timeout: 120_000 }, async () => {
    const cli = await spawnSidecarCli(['run'], { NEO4J_URI: server.uri, NEO4J_PASSWORD: server.password });
    try {
      assert.ok(await cli.waitForOk('/healthz'), cli.logs());
      const uri = `bolt://127.0.0.1:${cli.proxyPort}`;
      const ids = new Set<string>();
      for (let task = 0; task < 10; task++) ids.add(await perTask(uri, serverConnectionId));
      assert.ok(ids.size <= 2, `10 per-task drivers used ${ids.size} Neo4j connections`);
      const metrics = parseExposition(await (await fetch(`${cli.httpUrl}/metrics`)).text());
      const reused = metrics.samples.filter(
        (sample) => sample.name === 'neo4j_proxy_pool_checkouts_total' && sample.labels.result === 'reauthenticated',
      );
      assert.ok((reused[0]?.value ?? 0) >= 8, JSON.stringify(reused));
    } finally {
      await cli.stop();
    }
  });
});
