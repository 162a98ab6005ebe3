/**
 * What an idle sidecar costs the server, counted on the server: the real CLI with the default
 * configuration (probes every 6 s instead of 15 s, the same ratios) against a Neo4j with its default
 * login lockout, through a relay that notes which connections log in. Over a window of census runs
 * the server's connection ids say how many connections it accepted; each census run must account for
 * exactly one, and none of them may log in.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import neo4j from 'neo4j-driver';
import { type LocalNeo4j, startLocalNeo4j } from '../../scripts/neo4j/local-neo4j.ts';
import { boltEndpoint, readConnectionCounter } from '../../src/probe/connection-counter.ts';
import { type BoltRelay, startBoltRelay } from '../support/bolt-relay.ts';
import { type SidecarCli, spawnSidecarCli } from '../support/cli.ts';
import { warmUpCensusQueries } from './warm-up.ts';

const CENSUS_RUNS_IN_WINDOW = 5;
/** The default probes.freshConnect.everyRuns: the one probe that logs in on purpose. */
const FRESH_CONNECT_EVERY_RUNS = 20;

let server: LocalNeo4j;
let relay: BoltRelay;
let sidecar: SidecarCli | undefined;

before(async () => {
  // Neo4j's default lockout (3 failed logins), which the shared test server turns off.
  server = await startLocalNeo4j({
    name: 'census-logins',
    extraConfig: { 'dbms.security.auth_max_failed_attempts': '3' },
  });
  await warmUpCensusQueries(server);
  relay = await startBoltRelay(server.uri);
});
after(async () => {
  await sidecar?.stop();
  await relay?.close();
  await server?.destroy();
});

/** The server's current connection id, read by the test itself (its own connection is one of them). */
function serverCounter(): Promise<number | undefined> {
  return readConnectionCounter(boltEndpoint(server.uri), { userAgent: 'census-logins-test/1', timeoutMs: 5000 });
}

async function completedRuns(cli: SidecarCli): Promise<number> {
  const status = (await (await fetch(`${cli.httpUrl}/status`)).json()) as { probes: { completedRuns: number } };
  return status.probes.completedRuns;
}

/** Resolves just after a probe run completes (so the next one is a schedule interval away). */
async function nextRunCompleted(cli: SidecarCli, after: number): Promise<number> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const runs = await completedRuns(cli);
    if (runs > after) return runs;
    assert.ok(Date.now() < deadline, `no probe run completed after run ${after}: ${cli.logs().slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('an idle sidecar with the default configuration', () => {
  it('opens one connection per census run on the server and logs in on none of them', async () => {
    const cli = await spawnSidecarCli(['run'], {
      NEO4J_URI: relay.uri,
      NEO4J_PASSWORD: server.password,
      // The test reads the server's counter between two runs: a run lasts up to 2.6 s (two timeouts and
      // the head start), which at every 3 s left a loaded machine as little as 0.4 s to do it in.
      SIDECAR__PROBES__SCHEDULE: '*/6 * * * * *',
      SIDECAR__PROBES__TIMEOUT_MS: '1200',
      SIDECAR__PROBES__JITTER_MS: '0',
    });
    sidecar = cli;
    assert.ok(await cli.waitForOk('/readyz'), cli.logs());

    const firstRun = await nextRunCompleted(cli, 0);
    const startRuns = await nextRunCompleted(cli, firstRun);
    const startCounter = await serverCounter();
    const startConnections = relay.connections.length;
    let endRuns = startRuns;
    while (endRuns < startRuns + CENSUS_RUNS_IN_WINDOW) endRuns = await nextRunCompleted(cli, endRuns);
    const endCounter = await serverCounter();
    const window = relay.connections.slice(startConnections);

    assert.ok(startCounter !== undefined && endCounter !== undefined, 'Neo4j 5.26 names the connection in HELLO');
    // Ids between the two readings, the test's own end reading excluded.
    const serverAccepted = endCounter - startCounter - 1;
    const runIndexes = Array.from({ length: endRuns - startRuns }, (_, i) => startRuns + i);
    const freshConnects = runIndexes.filter((index) => index % FRESH_CONNECT_EVERY_RUNS === 0).length;
    assert.equal(window.length, serverAccepted, 'every connection the server accepted came from the sidecar');
    assert.equal(serverAccepted, runIndexes.length + freshConnects, 'one connection per census run');
    assert.equal(
      window.filter((connection) => connection.loggedIn).length,
      freshConnects,
      'no census run logs in (only the fresh-connect probe does, by design)',
    );
    // The relay does see logins: the sidecar's pool and the first fresh connect logged in before the window.
    assert.ok(relay.connections.slice(0, startConnections).some((connection) => connection.loggedIn));

    // And the server lists no sidecar connection opened during the window: the census used the pool.
    const driver = neo4j.driver(server.uri, neo4j.auth.basic(server.username, server.password));
    try {
      const { records } = await driver.executeQuery(
        'CALL dbms.listConnections() YIELD connectionId, userAgent RETURN connectionId, userAgent',
        {},
        { database: 'system' },
      );
      const ids = records
        .filter((record) => String(record.get('userAgent')).startsWith('neo4j-pool-sidecar/'))
        .map((record) => Number(String(record.get('connectionId')).replace(/^\D+-/, '')));
      assert.ok(ids.length > 0, 'the sidecar keeps its pooled connection');
      for (const id of ids) assert.ok(id < startCounter, `sidecar connection bolt-${id} predates the window`);
    } finally {
      await driver.close();
    }
  });
});
