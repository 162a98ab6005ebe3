/**
 * Cluster routing with no writer known (issue 19): a write is held as during an outage, within the same
 * proxy.pooling.holdTimeoutMs, while reads go on; released when a refreshed table names a writer, a
 * transient error at the bound. The member is the run's real Neo4j behind the scripted router, which
 * verifies logins as a cluster's router would.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import neo4j, { type Driver } from 'neo4j-driver';
import { POOLING_DEFAULTS } from '../../src/proxy/index.ts';
import { sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { type ScriptedRouter, type ScriptedRoutingTable, startScriptedRouter } from '../support/scripted-bolt.ts';
import { eventually, hostPort, startTestProxy, type TestProxy } from './support.ts';

let server: TestNeo4j;
let router: ScriptedRouter;
let observer: Driver;
const member = () => hostPort(server.uri);

function table(writers: string[]): ScriptedRoutingTable {
  return { ttlSeconds: 300, routers: [router.address], writers, readers: [member()] };
}

async function proxyWithHold(holdTimeoutMs: number): Promise<{ proxy: TestProxy; driver: Driver }> {
  const proxy = await startTestProxy(router.uri, {
    pooling: { ...POOLING_DEFAULTS, mode: 'transaction', holdTimeoutMs },
  });
  const driver = neo4j.driver(proxy.boltUri, neo4j.auth.basic(server.username, server.password), {
    maxTransactionRetryTime: 0,
  });
  return { proxy, driver };
}

async function probes(id: string): Promise<number> {
  const { records } = await observer.executeQuery('MATCH (n:RoutingHoldProbe {id: $id}) RETURN count(n) AS n', { id });
  return Number(records[0]?.get('n'));
}

describe('cluster routing with no writer known', () => {
  before(async () => {
    server = await sharedNeo4j();
    observer = neo4j.driver(server.uri, neo4j.auth.basic(server.username, server.password));
    router = await startScriptedRouter({
      username: server.username,
      password: server.password,
      table: { ttlSeconds: 300, routers: [], writers: [], readers: [] },
    });
  });

  after(async () => {
    await observer.executeQuery('MATCH (n:RoutingHoldProbe) DELETE n');
    await observer.close();
    await router.close();
  });

  it('holds a write until a refreshed table names a writer, while reads go on', async () => {
    router.setTable(table([]));
    const { proxy, driver } = await proxyWithHold(60_000);
    try {
      const id = randomUUID();
      const session = driver.session();
      const write = session.executeWrite((tx) => tx.run('CREATE (n:RoutingHoldProbe {id: $id}) RETURN n', { id }));
      await eventually(async () =>
        assert.equal(await proxy.metric('neo4j_proxy_pool_clients_held', { reason: 'no_writer' }), 1),
      );
      // Held, not failed: the refreshes keep finding no writer, and reads are served meanwhile.
      const refreshesWhileHeld = router.routeRequests.total;
      await eventually(() => assert.ok(router.routeRequests.total > refreshesWhileHeld + 1));
      const read = await driver.executeQuery('RETURN 1 AS one', {}, { routing: neo4j.routing.READ });
      assert.equal(read.records[0]?.get('one').toNumber?.() ?? read.records[0]?.get('one'), 1);
      assert.equal(await probes(id), 0);

      router.setTable(table([member()]));
      await write;
      await session.close();
      assert.equal(await probes(id), 1);
      assert.equal(await proxy.metric('neo4j_proxy_pool_holds_total', { reason: 'no_writer', outcome: 'released' }), 1);
      assert.equal(await proxy.metric('neo4j_proxy_pool_clients_held', { reason: 'no_writer' }), 0);
      assert.ok(
        (await proxy.metric('neo4j_proxy_routing_refreshes_total', { reason: 'no_writer', outcome: 'ok' })) >= 2,
      );
      assert.equal(await proxy.metric('neo4j_proxy_routing_units_total', { member: member(), access: 'write' }), 1);
    } finally {
      await driver.close();
      await proxy.stop();
    }
  });

  it('gives a held write a transient error at proxy.pooling.holdTimeoutMs, and the proxy serves on', async () => {
    router.setTable(table([]));
    const { proxy, driver } = await proxyWithHold(1500);
    try {
      const id = randomUUID();
      // session.run: one attempt, no driver retry, so exactly one hold meets the bound.
      const session = driver.session();
      await assert.rejects(
        session.run('CREATE (n:RoutingHoldProbe {id: $id})', { id }),
        (error: { code?: string; retriable?: boolean }) => {
          assert.equal(error.code, 'Neo.TransientError.General.DatabaseUnavailable');
          return true;
        },
      );
      await session.close();
      assert.equal(await probes(id), 0);
      assert.equal(
        await proxy.metric('neo4j_proxy_pool_holds_total', { reason: 'no_writer', outcome: 'timed_out' }),
        1,
      );
      router.setTable(table([member()]));
      await driver.executeQuery('CREATE (n:RoutingHoldProbe {id: $id})', { id });
      assert.equal(await probes(id), 1);
    } finally {
      await driver.close();
      await proxy.stop();
    }
  });

  it("answers clients' ROUTE from its own fresh table, naming only the proxy: the cluster sees the proxy's refreshes, not one per driver", async () => {
    router.setTable(table([member()]));
    const proxy = await startTestProxy(router.uri, { pooling: { ...POOLING_DEFAULTS, mode: 'transaction' } });
    try {
      const routesBefore = router.routeRequests.total;
      // A driver per task over neo4j://, as per-task workers do: each new driver ROUTEs before its first query.
      const tasks = 20;
      for (let task = 0; task < tasks; task++) {
        const driver = neo4j.driver(proxy.routingUri, neo4j.auth.basic(server.username, server.password));
        const access = task % 2 === 0 ? neo4j.routing.READ : neo4j.routing.WRITE;
        const { summary } = await driver.executeQuery('RETURN 1', {}, { routing: access, database: 'neo4j' });
        assert.equal(summary.server.address, proxy.proxy.advertisedAddress);
        await driver.close();
      }
      const proxyRefreshes = await proxy.metric('neo4j_proxy_routing_refreshes_total');
      const clientRoutes = await proxy.metric('neo4j_proxy_messages_total', {
        direction: 'client_to_server',
        message: 'ROUTE',
      });
      const reachedRouter = router.routeRequests.total - routesBefore;
      console.log(
        `client ROUTEs ${clientRoutes}, proxy refreshes ${proxyRefreshes}, ROUTEs at the router ${reachedRouter}`,
      );
      assert.ok(clientRoutes >= tasks, 'every driver fetched its table through the proxy');
      // Only ROUTEs before the proxy had a table of its own go through; the rest are answered by the proxy.
      assert.ok(reachedRouter <= proxyRefreshes + 1, `${reachedRouter} ROUTEs reached the router`);
    } finally {
      await proxy.stop();
    }
  });
});
