/**
 * The proxy's drain on stop(), in every pooling mode, against the real Neo4j with the real JS driver:
 * a client between transactions is closed at once, one inside an explicit transaction only after its
 * COMMIT is answered (so it commits), and in transaction mode a unit of work still waiting for an
 * upstream is not started: its client gets a transient FAILURE that drivers retry, and nothing of it
 * reaches Neo4j. Nothing is cut off by the grace period.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import neo4j, { type Driver, type Neo4jError } from 'neo4j-driver';
import { UPSTREAM_UNAVAILABLE_CODE } from '../../src/proxy/index.ts';
import { closeSharedNeo4j, openSharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { quiet } from './pooling-support.ts';
import { eventually, startTestProxy } from './support.ts';

const MODES = ['off', 'session', 'transaction'] as const;
const CLOSED = 'neo4j_proxy_client_connections_closed_total';

let server: TestNeo4j;
let direct: Driver;

before(async () => {
  ({ server, driver: direct } = await openSharedNeo4j(quiet));
});
after(() => closeSharedNeo4j(direct));

async function writesOf(run: string): Promise<number[]> {
  const { records } = await direct.executeQuery(
    'MATCH (n:DrainWrite {run: $run}) RETURN n.step AS step ORDER BY step',
    {
      run,
    },
  );
  return records.map((record) => Number(record.get('step')));
}

describe('drain on stop()', () => {
  for (const mode of MODES) {
    it(`${mode}: closes idle clients at once and an open transaction only after its COMMIT`, async () => {
      // One upstream in transaction mode: the waiting client's unit cannot start while the transaction is open.
      const proxy = await startTestProxy(server.uri, {
        pooling: mode === 'transaction' ? { mode, maxUpstreams: 1 } : { mode },
      });
      const driverFor = () =>
        neo4j.driver(proxy.boltUri, neo4j.auth.basic(server.username, server.password), {
          ...quiet,
          maxTransactionRetryTime: 0,
        });
      const busy = driverFor();
      const idle = driverFor();
      const waiting = driverFor();
      const run = randomUUID();
      try {
        await idle.executeQuery('RETURN 1');
        await waiting.executeQuery('RETURN 1');
        const session = busy.session();
        const tx = await session.beginTransaction();
        await tx.run('CREATE (:DrainWrite {run: $run, step: 1})', { run });
        let waitingWrite: Promise<unknown> | null = null;
        if (mode === 'transaction') {
          // Auto-commit session.run, which drivers never retry: the error it gets is the proxy's own.
          waitingWrite = waiting.session().run('CREATE (:DrainWrite {run: $run, step: 99})', { run });
          await eventually(() => assert.equal(proxy.proxy.status().pool?.waiting, 1), 30_000);
        }
        const open = proxy.proxy.activeConnections;

        const stopped = proxy.proxy.stop(120_000);
        // The idle clients (in transaction mode one of them waiting) go at once; the transaction stays.
        assert.equal(open, 3);
        await eventually(() => assert.equal(proxy.proxy.activeConnections, 1), 30_000);
        if (waitingWrite !== null) {
          await assert.rejects(waitingWrite, (error: Neo4jError) => {
            assert.equal(error.code, UPSTREAM_UNAVAILABLE_CODE, String(error));
            assert.match(error.message, /shutting down/);
            assert.equal(error.retryable, true);
            return true;
          });
        }
        await tx.run('CREATE (:DrainWrite {run: $run, step: 2})', { run });
        await tx.commit();
        await session.close();
        await stopped;

        assert.deepEqual(await writesOf(run), [1, 2]);
        assert.equal(await proxy.metric(CLOSED, { reason: 'shutdown_grace_over' }), 0);
        assert.ok((await proxy.metric(CLOSED, { reason: 'shutdown' })) >= 2);
      } finally {
        await busy.close();
        await idle.close();
        await waiting.close();
        await proxy.stop();
      }
    });
  }

  it('cuts off what is still inside a transaction when the grace period is over, as shutdown_grace_over', async () => {
    const proxy = await startTestProxy(server.uri, { pooling: { mode: 'transaction' } });
    const driver = neo4j.driver(proxy.boltUri, neo4j.auth.basic(server.username, server.password), quiet);
    const run = randomUUID();
    try {
      const session = driver.session();
      const tx = await session.beginTransaction();
      await tx.run('CREATE (:DrainWrite {run: $run, step: 1})', { run });
      await proxy.proxy.stop(200);
      await assert.rejects(tx.commit());
      await session.close().catch(() => {});
      assert.deepEqual(await writesOf(run), []);
      assert.equal(await proxy.metric(CLOSED, { reason: 'shutdown_grace_over' }), 1);
    } finally {
      await driver.close();
    }
  });
});
