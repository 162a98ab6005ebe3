import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import neo4j6 from 'neo4j-driver';
import neo4j5 from 'neo4j-driver-5';
import { instrumentDriver } from '../../src/instrument/index.ts';
import { PrometheusSink, Recorder } from '../../src/metrics/index.ts';
import { QueryStatistics } from '../../src/querystats/index.ts';
import { eventually } from '../support/eventually.ts';
import { metricValue } from '../support/metrics.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';

type DriverModule = typeof neo4j6;

// Both supported major versions run the same suite; neo4j-driver-5 is an npm alias of neo4j-driver@5.
const drivers: Array<[string, DriverModule]> = [
  ['neo4j-driver 6.x', neo4j6],
  ['neo4j-driver 5.x', neo4j5 as unknown as DriverModule],
];

let server: TestNeo4j;
before(async () => {
  server = await sharedNeo4j();
});
after(releaseSharedNeo4j);

for (const [driverName, neo4j] of drivers) {
  describe(`instrumentDriver with ${driverName}`, () => {
    function setUp(config: Record<string, unknown> = {}) {
      const sink = new PrometheusSink();
      const recorder = new Recorder({ sinks: [sink] });
      const driver = neo4j.driver(server.uri, neo4j.auth.basic(server.username, server.password), {
        logging: { level: 'error', logger: () => {} },
        ...config,
      });
      const warnings: string[] = [];
      const handle = instrumentDriver(driver, { recorder, poolName: 'test', onWarning: (m) => warnings.push(m) });
      return { sink, recorder, driver, handle, warnings, registry: sink.registry };
    }

    it('times a successful query with source, database, mode and outcome labels', async () => {
      const { driver, handle, warnings, registry } = setUp();
      try {
        assert.equal(handle.poolObserved, true, warnings.join('; '));
        await driver.executeQuery('RETURN 1 AS one');
        await driver.executeQuery('RETURN 2 AS two', {}, { routing: neo4j.routing.READ });
        const timeoutSeries = (
          await registry.getSingleMetric('neo4j_driver_connections_acquisition_timeout_total')?.get()
        )?.values;
        assert.equal(timeoutSeries?.length, 1, 'counters are exported at 0 before their first event');
        assert.equal(timeoutSeries?.[0]?.value, 0);
        const labels = { source: 'driver', database: 'neo4j' };
        assert.equal(
          await metricValue(registry, 'neo4j_query_duration_seconds_count', {
            ...labels,
            mode: 'write',
            outcome: 'success',
          }),
          1,
        );
        assert.equal(
          await metricValue(registry, 'neo4j_query_duration_seconds_count', {
            ...labels,
            mode: 'read',
            outcome: 'success',
          }),
          1,
        );
        assert.ok((await metricValue(registry, 'neo4j_query_duration_seconds_sum', labels)) > 0);
        assert.equal(await metricValue(registry, 'neo4j_queries_in_flight', { source: 'driver' }), 0);
      } finally {
        await driver.close();
      }
    });

    it('records a failing query with its Neo4j status code', async () => {
      const { driver, registry } = setUp();
      try {
        await assert.rejects(driver.executeQuery('RETURN nonsense syntax here('), /Invalid input|SyntaxError/i);
        assert.equal(
          await metricValue(registry, 'neo4j_query_errors_total', {
            source: 'driver',
            code: 'Neo.ClientError.Statement.SyntaxError',
          }),
          1,
        );
        assert.equal(await metricValue(registry, 'neo4j_query_duration_seconds_count', { outcome: 'error' }), 1);
        assert.equal(await metricValue(registry, 'neo4j_queries_in_flight', { source: 'driver' }), 0);
      } finally {
        await driver.close();
      }
    });

    it('counts each query of session.run, explicit and managed transactions exactly once', async () => {
      const { driver, registry } = setUp();
      const session = driver.session({ database: 'neo4j' });
      try {
        await session.run('RETURN 1');
        const tx = await session.beginTransaction();
        await tx.run('RETURN 1');
        await tx.run('RETURN 2');
        await tx.commit();
        await session.executeRead((work) => work.run('RETURN 3'));
        await session.executeWrite((work) => work.run('CREATE (n:InstrumentTest) DELETE n'));
        assert.equal(await metricValue(registry, 'neo4j_query_duration_seconds_count', { outcome: 'success' }), 5);
        assert.equal(await metricValue(registry, 'neo4j_query_duration_seconds_count', { mode: 'read' }), 1);
        assert.equal(await metricValue(registry, 'neo4j_query_duration_seconds_count', { mode: 'write' }), 4);
      } finally {
        await session.close();
        await driver.close();
      }
    });

    it('reports in-use connections while transactions are open, then idle ones', async () => {
      const { driver, recorder, registry, handle } = setUp();
      const openTransactions = 4;
      const sessions = Array.from({ length: openTransactions }, () => driver.session());
      try {
        const transactions = await Promise.all(sessions.map((session) => session.beginTransaction()));
        await Promise.all(transactions.map((tx) => tx.run('RETURN 1')));
        recorder.sample(true);
        assert.equal(
          await metricValue(registry, 'neo4j_driver_connections_in_use', { pool: 'test' }),
          openTransactions,
        );
        assert.equal(await metricValue(registry, 'neo4j_driver_connections_max', { pool: 'test' }), 100);
        await Promise.all(transactions.map((tx) => tx.commit()));
        await Promise.all(sessions.map((session) => session.close()));
        recorder.sample(true);
        assert.equal(await metricValue(registry, 'neo4j_driver_connections_in_use', { pool: 'test' }), 0);
        assert.equal(await metricValue(registry, 'neo4j_driver_connections_idle', { pool: 'test' }), openTransactions);
        assert.equal(
          await metricValue(registry, 'neo4j_driver_connections_created_total', { pool: 'test' }),
          openTransactions,
        );
        assert.equal(handle.connectionsOpened(), openTransactions, 'the handle keeps the same count as state');
        assert.ok((await metricValue(registry, 'neo4j_driver_connections_usage_seconds_count', { pool: 'test' })) >= 4);
        assert.ok(
          (await metricValue(registry, 'neo4j_driver_connections_acquisition_seconds_count', { pool: 'test' })) >= 4,
        );
        assert.equal(
          await metricValue(registry, 'neo4j_driver_connections_creation_seconds_count', { pool: 'test' }),
          openTransactions,
        );
      } finally {
        await driver.close();
      }
      assert.equal(
        await metricValue(registry, 'neo4j_driver_connections_closed_total', { pool: 'test' }),
        openTransactions,
      );
      // A closed driver stops reporting pool gauges.
      assert.equal((await registry.getSingleMetric('neo4j_driver_connections_idle')?.get())?.values.length ?? 0, 0);
    });

    it("hands query texts to the recorder's statistics, a driver's own, or with queryStats: null to none", async () => {
      const shared = new QueryStatistics();
      const own = new QueryStatistics();
      const sink = new PrometheusSink();
      const recorder = new Recorder({ sinks: [sink], queryStats: shared });
      const auth = neo4j.auth.basic(server.username, server.password);
      const quiet = { logging: { level: 'error' as const, logger: () => {} } };
      const worker = neo4j.driver(server.uri, auth, quiet);
      const monitor = neo4j.driver(server.uri, auth, quiet);
      const separate = neo4j.driver(server.uri, auth, quiet);
      instrumentDriver(worker, { recorder, poolName: 'worker', source: 'worker' });
      instrumentDriver(monitor, { recorder, poolName: 'monitor', source: 'monitor', queryStats: null });
      instrumentDriver(separate, { recorder, poolName: 'separate', source: 'separate', queryStats: own });
      try {
        await worker.executeQuery('RETURN 1 AS worker');
        await monitor.executeQuery('RETURN 1 AS monitor');
        await separate.executeQuery('RETURN 1 AS separate');
        const texts = (statistics: QueryStatistics) => statistics.snapshot().queries.map((row) => row.query);
        assert.deepEqual(texts(shared), ['RETURN ? AS worker']);
        assert.deepEqual(texts(own), ['RETURN ? AS separate']);
        // Kept out of the statistics, still in the query metrics.
        assert.equal(await metricValue(sink.registry, 'neo4j_query_duration_seconds_count', { source: 'monitor' }), 1);
      } finally {
        await Promise.all([worker.close(), monitor.close(), separate.close()]);
      }
    });

    it('counts an acquisition timeout when the only connection is held', async () => {
      // Long enough that the wait is seen before it times out, however slow the machine.
      const { driver, recorder, registry } = setUp({ maxConnectionPoolSize: 1, connectionAcquisitionTimeout: 3000 });
      const holder = driver.session();
      const waiter = driver.session();
      try {
        const tx = await holder.beginTransaction();
        await tx.run('RETURN 1');
        const waiting = waiter.run('RETURN 1');
        await eventually(
          async () => {
            recorder.sample(true);
            assert.equal(await metricValue(registry, 'neo4j_driver_connections_acquiring', { pool: 'test' }), 1);
          },
          { timeoutMs: 2500, intervalMs: 10 },
        );
        await assert.rejects(waiting, /Connection acquisition timed out/);
        assert.equal(
          await metricValue(registry, 'neo4j_driver_connections_acquisition_timeout_total', { pool: 'test' }),
          1,
        );
        await tx.rollback();
      } finally {
        await waiter.close();
        await holder.close();
        await driver.close();
      }
    });
  });
}

describe('instrumentDriver with unexpected internals', () => {
  it('warns once and keeps working when the pool is not found', () => {
    const recorder = new Recorder({ sinks: [new PrometheusSink()] });
    const warnings: string[] = [];
    const handle = instrumentDriver({ close: async () => {} }, { recorder, onWarning: (m) => warnings.push(m) });
    assert.equal(handle.poolObserved, false);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /pool metrics unavailable/);
  });
});
