/**
 * Neo4j stops and comes back while workers query, in-process and through the proxy: the sidecar
 * stays up, /readyz goes 503 and back, the probes count failures as `unavailable`, every query
 * settles (success or a prompt error, never a hang), and queries succeed again without a restart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import neo4j, { type Driver } from 'neo4j-driver';
import type { LocalNeo4j } from '../../scripts/neo4j/local-neo4j.ts';
import { instrumentDriver } from '../../src/instrument/index.ts';
import { isBoltProxyComponent } from '../../src/proxy/index.ts';
import type { RunningSidecar } from '../../src/server/index.ts';
import { eventually } from '../support/eventually.ts';
import { metricValue } from '../support/metrics.ts';
import { privateNeo4j } from '../support/neo4j.ts';
import { startTestSidecar } from '../support/sidecar.ts';
import { type UncaughtWatch, watchUncaught } from '../support/uncaught.ts';

/**
 * A query that has neither succeeded nor failed by then counts as a hang: 15 times the workers'
 * 2 s connection timeout, so a slow failure on a loaded machine is not taken for one.
 */
const QUERY_SETTLE_LIMIT_MS = 30_000;

let server: LocalNeo4j;
let sidecar: RunningSidecar;
let uncaught: UncaughtWatch;

before(async () => {
  uncaught = watchUncaught();
  server = await privateNeo4j('restart');
  sidecar = await startTestSidecar({
    neo4j: server,
    env: {
      SIDECAR__NEO4J__CONNECTION_TIMEOUT_MS: '2000',
      // Every 3 s with a 1 s timeout: a healthy probe on a loaded machine stays inside it, so readiness
      // comes back once Neo4j does.
      SIDECAR__PROBES__SCHEDULE: '*/3 * * * * *',
      SIDECAR__PROBES__TIMEOUT_MS: '1000',
      SIDECAR__PROBES__JITTER_MS: '0',
      // Proxy clients are held while Neo4j is down, 5 s here, well inside the 30 s hang limit below.
      SIDECAR__PROXY__POOLING__HOLD_TIMEOUT_MS: '5000',
    },
  });
});
after(async () => {
  await sidecar?.stop();
  await server?.destroy();
  uncaught?.stop();
});

function workerDriver(uri: string): Driver {
  return neo4j.driver(uri, neo4j.auth.basic(server.username, server.password), {
    connectionTimeout: 2000,
    maxTransactionRetryTime: 0,
    logging: { level: 'error', logger: () => {} },
  });
}

async function readyzStatus(base: string): Promise<number> {
  return (await fetch(`${base}/readyz`)).status;
}

/** Runs queries back to back until told to stop; every one must settle within the limit. */
function queryLoop(driver: Driver, label: string) {
  const outcomes = { ok: 0, failed: 0, hangs: [] as string[] };
  let running = true;
  const done = (async () => {
    for (let index = 0; running && index < 10_000; index++) {
      const started = Date.now();
      const settled = await Promise.race([
        driver.executeQuery('RETURN 1').then(
          () => 'ok' as const,
          () => 'failed' as const,
        ),
        new Promise<'hang'>((resolve) => setTimeout(() => resolve('hang'), QUERY_SETTLE_LIMIT_MS).unref()),
      ]);
      if (settled === 'hang') outcomes.hangs.push(`${label} query ${index} started at ${started}`);
      else outcomes[settled]++;
      if (settled !== 'ok') await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  return {
    outcomes,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

describe('Neo4j restarting under load', () => {
  it('the sidecar stays up, reports it, and recovers without a restart', async () => {
    const base = `http://127.0.0.1:${sidecar.httpAddress.port}`;
    const proxy = sidecar.components.find(isBoltProxyComponent)?.proxy;
    assert.ok(proxy);
    const viaProxy = workerDriver(`bolt://${proxy.address}`);
    const direct = workerDriver(server.uri);
    const instrumented = instrumentDriver(direct, { recorder: sidecar.recorder, poolName: 'worker' });
    const loops = [queryLoop(viaProxy, 'proxy'), queryLoop(direct, 'in-process')];
    try {
      await eventually(async () => assert.equal(await readyzStatus(base), 200, '/readyz'), {
        timeoutMs: 60_000,
        intervalMs: 200,
      });
      await new Promise((resolve) => setTimeout(resolve, 500));
      const unavailableBefore = await metricValue(sidecar.prometheus.registry, 'neo4j_probe_failures_total', {
        reason: 'unavailable',
      });

      await server.stop();
      await eventually(async () => assert.equal(await readyzStatus(base), 503, '/readyz'), {
        timeoutMs: 60_000,
        intervalMs: 200,
      });
      await eventually(
        async () =>
          assert.ok(
            (await metricValue(sidecar.prometheus.registry, 'neo4j_probe_failures_total', { reason: 'unavailable' })) >
              unavailableBefore,
            'a probe failure with reason unavailable',
          ),
        { timeoutMs: 60_000, intervalMs: 200 },
      );
      // Proxy clients are held while the server is down, then get a transient error (holdTimeoutMs).
      const refused = workerDriver(`bolt://${proxy.address}`);
      try {
        await assert.rejects(refused.executeQuery('RETURN 1'));
      } finally {
        await refused.close();
      }

      await server.start();
      await eventually(async () => assert.equal(await readyzStatus(base), 200, '/readyz again'), {
        timeoutMs: 120_000,
        intervalMs: 200,
      });
      const okBefore = loops.map((loop) => loop.outcomes.ok);
      await eventually(
        () =>
          assert.ok(
            loops.every((loop, index) => loop.outcomes.ok > (okBefore[index] ?? 0)),
            'queries succeed again',
          ),
        { timeoutMs: 120_000, intervalMs: 200 },
      );
    } finally {
      await Promise.all(loops.map((loop) => loop.stop()));
      instrumented.detach();
      await Promise.all([viaProxy.close(), direct.close()]);
    }
    for (const loop of loops) {
      assert.deepEqual(loop.outcomes.hangs, []);
      assert.ok(loop.outcomes.failed > 0, 'the outage was seen by the workers');
    }
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.deepEqual(uncaught.errors, [], 'no uncaught exception or rejection');
  });
});
