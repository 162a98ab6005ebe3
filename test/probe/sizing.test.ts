/**
 * Pool sizing advice from a real driver's measured acquisitions and hold times (Little's law). The
 * sizer is told the time of each observation, so the window is exact whatever the machine's speed.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import neo4j, { type Driver } from 'neo4j-driver';
import { instrumentDriver } from '../../src/instrument/index.ts';
import { createLogger } from '../../src/logger.ts';
import { PrometheusSink, Recorder } from '../../src/metrics/index.ts';
import { PoolSizer } from '../../src/probe/index.ts';
import { metricValue } from '../support/metrics.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';

let server: TestNeo4j;
before(async () => {
  server = await sharedNeo4j();
});
after(releaseSharedNeo4j);

function setUp(driverConfig: Record<string, unknown>, windowSeconds: number) {
  const sink = new PrometheusSink();
  const recorder = new Recorder({ sinks: [sink] });
  const driver: Driver = neo4j.driver(server.uri, neo4j.auth.basic(server.username, server.password), {
    logging: { level: 'error', logger: () => {} },
    ...driverConfig,
  });
  instrumentDriver(driver, { recorder, poolName: 'app' });
  const stream = new PassThrough();
  const logLines: string[] = [];
  stream.on('data', (chunk: Buffer) => logLines.push(...chunk.toString().split('\n').filter(Boolean)));
  const sizer = new PoolSizer({
    recorder,
    windowSeconds,
    undersizedRatio: 0.8,
    oversizedRatio: 0.25,
    logIntervalSeconds: 3600,
    logger: createLogger({ level: 'info', pretty: 'never', destination: stream }),
  });
  return { recorder, registry: sink.registry, driver, sizer, logLines };
}

describe('pool sizing advice', () => {
  it('calls a pool too small when acquisitions time out, and logs it at most hourly', async () => {
    const { driver, sizer, registry, logLines } = setUp(
      { maxConnectionPoolSize: 2, connectionAcquisitionTimeout: 300 },
      10,
    );
    const start = Date.now();
    try {
      await driver.executeQuery('RETURN 1');
      sizer.observe(start);
      const holders = [driver.session(), driver.session()];
      const transactions = await Promise.all(holders.map((session) => session.beginTransaction()));
      await Promise.all(transactions.map((tx) => tx.run('RETURN 1')));
      const waiter = driver.session();
      await assert.rejects(waiter.run('RETURN 1'), /Connection acquisition timed out/);
      await waiter.close();
      await Promise.all(transactions.map((tx) => tx.commit()));
      await Promise.all(holders.map((session) => session.close()));

      const [sizing] = sizer.observe(start + 10_000);
      assert.equal(sizing?.pool, 'app');
      assert.equal(sizing?.verdict, 'too-small', sizing?.advice);
      assert.equal(sizing?.acquisitionTimeouts, 1);
      assert.equal(sizing?.maxConnections, 2);
      assert.ok((sizing?.suggestedMaxConnections ?? 0) > 2);
      assert.match(sizing?.advice ?? '', /Raise maxConnectionPoolSize/);

      // Little's law over the 10 s window: acquisitions/s x mean hold = total hold time / 10 s.
      const holdSeconds = await metricValue(registry, 'neo4j_driver_connections_usage_seconds_sum', { pool: 'app' });
      const holdCount = await metricValue(registry, 'neo4j_driver_connections_usage_seconds_count', { pool: 'app' });
      assert.ok(holdSeconds > 0 && holdCount >= 2);
      assert.ok(sizing!.neededConnections > 0);
      // The pool was idle at both observations, so the sampled in-use floor is 0 and Little's law decides.
      assert.ok(
        Math.abs(sizing!.neededConnections - sizing!.acquisitionsPerSecond * (sizing!.meanHoldSeconds ?? 0)) < 0.01,
        JSON.stringify(sizing),
      );
      assert.equal(
        await metricValue(registry, 'neo4j_driver_connections_needed', { pool: 'app' }),
        sizing!.neededConnections,
      );

      sizer.observe(start + 11_000);
      const lines = logLines.filter((line) => line.includes('too small'));
      assert.equal(lines.length, 1, 'logged once, not on every observation');
      assert.match(lines[0]!, /"verdict":"too-small"/);
    } finally {
      await driver.close();
    }
    sizer.observe(start + 12_000);
    assert.equal(
      (await registry.getSingleMetric('neo4j_driver_connections_needed')?.get())?.values.length ?? 0,
      0,
      'a closed pool stops reporting',
    );
  });

  it('calls a large, lightly used pool oversized, and says so only once the window is half measured', async () => {
    const { driver, sizer } = setUp({ maxConnectionPoolSize: 50 }, 20);
    const start = Date.now();
    try {
      await driver.executeQuery('RETURN 1');
      sizer.observe(start);
      for (let i = 0; i < 5; i++) await driver.executeQuery('RETURN 1');
      const [early] = sizer.observe(start + 5_000);
      assert.equal(early?.verdict, 'measuring');
      for (let i = 0; i < 5; i++) await driver.executeQuery('RETURN 1');
      const [sizing] = sizer.observe(start + 20_000);
      assert.equal(sizing?.verdict, 'oversized', sizing?.advice);
      assert.equal(sizing?.suggestedMaxConnections, 10);
      assert.ok(sizing!.neededConnections < 1);
    } finally {
      await driver.close();
    }
  });

  it('counts connections held through the whole window, which have no hold time yet', async () => {
    const { driver, sizer } = setUp({ maxConnectionPoolSize: 4 }, 10);
    const start = Date.now();
    const holders = [driver.session(), driver.session(), driver.session()];
    try {
      const transactions = await Promise.all(holders.map((session) => session.beginTransaction()));
      await Promise.all(transactions.map((tx) => tx.run('RETURN 1')));
      sizer.observe(start);
      sizer.observe(start + 5_000);
      const [sizing] = sizer.observe(start + 10_000);
      assert.equal(sizing?.neededConnections, 3);
      assert.equal(sizing?.peakInUse, 3);
      await Promise.all(transactions.map((tx) => tx.rollback()));
    } finally {
      await Promise.all(holders.map((session) => session.close()));
      await driver.close();
    }
  });

  it('reports no traffic for an idle pool', async () => {
    const { driver, sizer } = setUp({ maxConnectionPoolSize: 50 }, 10);
    const start = Date.now();
    try {
      await driver.executeQuery('RETURN 1');
      sizer.observe(start);
      const [sizing] = sizer.observe(start + 10_000);
      assert.equal(sizing?.verdict, 'no-traffic');
      assert.equal(sizing?.neededConnections, 0);
    } finally {
      await driver.close();
    }
  });
});
