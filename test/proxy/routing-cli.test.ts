/**
 * Cluster routing as a user gets it: the real CLI (`neo4j-pool-sidecar run`) with the default
 * configuration but for the two settings routing needs, NEO4J_URI naming a cluster (neo4j://, here the
 * scripted router in front of the run's real Neo4j) and SIDECAR__PROXY__POOLING__MODE=transaction.
 * A JavaScript driver's write and read through the proxy are routed by member, and what the operator
 * reads over HTTP says so: /proxy/pools with each member's pool, /status with the routing table,
 * /metrics with the routing series.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import neo4j from 'neo4j-driver';
import { spawnSidecarCli } from '../support/cli.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { parseExposition } from '../support/prometheus-text.ts';
import { type ScriptedRouter, startScriptedRouter } from '../support/scripted-bolt.ts';
import { eventually, hostPort } from './support.ts';

let server: TestNeo4j;
let router: ScriptedRouter;

before(async () => {
  server = await sharedNeo4j();
  router = await startScriptedRouter({
    username: server.username,
    password: server.password,
    table: { ttlSeconds: 300, routers: [], writers: [hostPort(server.uri)], readers: [hostPort(server.uri)] },
  });
  // As a real cluster's table does, it names its router (known once the router listens).
  router.setTable({
    ttlSeconds: 300,
    routers: [router.address],
    writers: [hostPort(server.uri)],
    readers: [hostPort(server.uri)],
  });
});
after(async () => {
  await router?.close();
  await releaseSharedNeo4j();
});

describe('cluster routing through the real CLI', () => {
  it('routes a write and a read by member and shows the members in /proxy/pools, /status and /metrics', async () => {
    const member = hostPort(server.uri);
    const cli = await spawnSidecarCli(['run'], {
      NEO4J_URI: router.uri,
      NEO4J_PASSWORD: server.password,
      SIDECAR__PROXY__POOLING__MODE: 'transaction',
    });
    const driver = neo4j.driver(
      `neo4j://127.0.0.1:${cli.proxyPort}`,
      neo4j.auth.basic(server.username, server.password),
    );
    try {
      assert.ok(await cli.waitForOk('/healthz'), cli.logs());
      const write = await driver.executeQuery(
        'CREATE (n:RoutingCliProbe) RETURN id(n) AS id',
        {},
        { database: 'neo4j' },
      );
      const read = await driver.executeQuery(
        'MATCH (n:RoutingCliProbe) WHERE id(n) = $id RETURN count(n) AS n',
        { id: write.records[0]?.get('id') },
        { database: 'neo4j', routing: neo4j.routing.READ },
      );
      assert.equal(Number(read.records[0]?.get('n')), 1);
      assert.equal(read.summary.server.address, `127.0.0.1:${cli.proxyPort}`, 'the client saw only the proxy');

      const pools = (await (await fetch(`${cli.httpUrl}/proxy/pools`)).json()) as {
        members?: Array<{ address: string; roles: string[]; reachable: boolean }>;
      };
      const listed = pools.members?.find((candidate) => candidate.address === member);
      assert.ok(listed, JSON.stringify(pools));
      assert.deepEqual([...listed.roles].sort(), ['reader', 'writer']);
      assert.equal(listed.reachable, true);

      const status = (await (await fetch(`${cli.httpUrl}/status`)).json()) as {
        proxy?: { routing?: { tables: Array<{ database: string; writers: string[] }> } };
      };
      assert.deepEqual(
        status.proxy?.routing?.tables.map((table) => [table.database, table.writers]),
        [['neo4j', [member]]],
      );

      await eventually(async () => {
        const samples = parseExposition(await (await fetch(`${cli.httpUrl}/metrics`)).text()).samples;
        const units = (access: string) =>
          samples.find(
            (sample) =>
              sample.name === 'neo4j_proxy_routing_units_total' &&
              sample.labels.member === member &&
              sample.labels.access === access,
          )?.value;
        assert.equal(units('write'), 1);
        assert.equal(units('read'), 1);
      });
    } finally {
      await driver.close();
      await cli.stop();
      const cleanup = neo4j.driver(server.uri, neo4j.auth.basic(server.username, server.password));
      await cleanup.executeQuery('MATCH (n:RoutingCliProbe) DELETE n').finally(() => cleanup.close());
    }
  });
});
