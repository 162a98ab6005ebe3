/**
 * The probes against the run's shared real Neo4j: what each measures, how failures are classified,
 * readiness, and the schedule (no overlapping runs).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import neo4j, { type Driver } from 'neo4j-driver';
import { configSchema, type SidecarConfigInput } from '../../src/config/index.ts';
import { type InstrumentedDriver, instrumentDriver } from '../../src/instrument/index.ts';
import { PrometheusSink, Recorder } from '../../src/metrics/index.ts';
import { createProbesComponent, type ProbeResult, ProbeScheduler } from '../../src/probe/index.ts';
import { eventually } from '../support/eventually.ts';
import { metricValue } from '../support/metrics.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { warmUpCensusQueries } from './warm-up.ts';

let server: TestNeo4j;
before(async () => {
  server = await sharedNeo4j();
  await warmUpCensusQueries(server);
});
after(releaseSharedNeo4j);

/**
 * These tests call runOnce and are about what the probes report, not their timeout (the saturated-pool
 * test sets its own): a timeout a loaded machine cannot hit, with a schedule long enough to allow it.
 */
const PROBE_TIMEOUT_MS = 20_000;

function configFor(probes: SidecarConfigInput['probes'] = {}, neo4jOverrides: SidecarConfigInput['neo4j'] = {}) {
  return configSchema.parse({
    neo4j: { uri: server.uri, password: server.password, ...neo4jOverrides },
    probes: { timeoutMs: PROBE_TIMEOUT_MS, schedule: '0 * * * * *', ...probes },
  });
}

function sidecarDriver(
  config: ReturnType<typeof configFor>,
  recorder: Recorder,
): { driver: Driver; ownPool: InstrumentedDriver } {
  const driver = neo4j.driver(config.neo4j.uri!, neo4j.auth.basic(config.neo4j.username, config.neo4j.password ?? ''), {
    maxConnectionPoolSize: config.neo4j.maxConnectionPoolSize,
    connectionAcquisitionTimeout: config.neo4j.connectionAcquisitionTimeoutMs,
    userAgent: 'neo4j-pool-sidecar/0.1.0',
    logging: { level: 'error', logger: () => {} },
  });
  const ownPool = instrumentDriver(driver, { recorder, poolName: 'sidecar', source: 'sidecar' });
  return { driver, ownPool };
}

function setUp(probes: SidecarConfigInput['probes'] = {}, neo4jOverrides: SidecarConfigInput['neo4j'] = {}) {
  const config = configFor(probes, neo4jOverrides);
  const sink = new PrometheusSink();
  const recorder = new Recorder({ sinks: [sink] });
  const { driver, ownPool } = sidecarDriver(config, recorder);
  const component = createProbesComponent({ config, driver, ownPool, recorder });
  return { config, recorder, registry: sink.registry, driver, component };
}

function byProbe(results: readonly ProbeResult[]): Record<string, ProbeResult> {
  return Object.fromEntries(
    results.map((result) => [result.database ? `${result.probe}:${result.database}` : result.probe, result]),
  );
}

describe('probes against a real Neo4j', () => {
  it('run every probe once, record duration, up and last success, and make the sidecar ready', async () => {
    const { component, driver, registry } = setUp({ freshConnect: { everyRuns: 1 } });
    try {
      assert.deepEqual(await component.readiness!(), { ok: false, detail: 'probes have not run yet' });
      const results = byProbe(await component.runOnce());
      assert.deepEqual(Object.keys(results).sort(), [
        'acquisition:default',
        'census',
        'fresh_connect',
        'round_trip:default',
      ]);
      for (const result of Object.values(results)) {
        assert.equal(result.ok, true, `${result.probe}: ${result.error}`);
        // A measured duration in seconds, not the timeout's stand-in (a unit slip would show as 1000x).
        assert.ok(
          result.seconds > 0 && result.seconds < PROBE_TIMEOUT_MS / 1000,
          `${result.probe} took ${result.seconds} s`,
        );
      }
      assert.equal(results['round_trip:default']!.detail?.database, 'neo4j');
      assert.equal(results.fresh_connect!.detail?.agent, 'Neo4j/5.26.30');
      assert.deepEqual(await component.readiness!(), { ok: true });
      for (const probe of ['acquisition', 'round_trip']) {
        const labels = { probe, database: 'default' };
        assert.equal(await metricValue(registry, 'neo4j_probe_up', labels), 1);
        assert.ok((await metricValue(registry, 'neo4j_probe_duration_seconds', labels)) > 0);
        const lastSuccess = await metricValue(registry, 'neo4j_probe_last_success_timestamp_seconds', labels);
        assert.ok(Math.abs(lastSuccess - Date.now() / 1000) < 60);
        assert.equal(await metricValue(registry, 'neo4j_probe_failures_total', labels), 0);
      }
      const status = component.status!() as { results: Record<string, ProbeResult>; completedRuns: number };
      assert.equal(status.completedRuns, 1);
      assert.equal(status.results['acquisition:default']?.ok, true);
    } finally {
      await component.stop();
      await driver.close();
    }
  });

  it('probe each configured database', async () => {
    const { component, driver, registry } = setUp({ databases: ['neo4j', 'system'], census: { enabled: false } });
    try {
      const results = byProbe(await component.runOnce());
      assert.equal(results['round_trip:neo4j']?.ok, true);
      assert.equal(results['round_trip:system']?.ok, true);
      assert.equal(results['round_trip:system']?.detail?.database, 'system');
      assert.equal(results['acquisition:system']?.ok, true);
      assert.equal(await metricValue(registry, 'neo4j_probe_up', { probe: 'round_trip', database: 'system' }), 1);
    } finally {
      await component.stop();
      await driver.close();
    }
  });

  it('runs fresh connect only every Nth run', async () => {
    const { component, driver } = setUp({ freshConnect: { everyRuns: 3 }, census: { enabled: false } });
    try {
      const runs: string[][] = [];
      for (let i = 0; i < 4; i++) runs.push((await component.runOnce()).map((result) => result.probe).sort());
      assert.deepEqual(
        runs.map((probes) => probes.includes('fresh_connect')),
        [true, false, false, true],
      );
    } finally {
      await component.stop();
      await driver.close();
    }
  });

  it('times the wait for a connection of a saturated pool and fails it with reason timeout', async () => {
    const { component, driver, registry } = setUp(
      { timeoutMs: 300, census: { enabled: false }, roundTrip: { enabled: false }, freshConnect: { enabled: false } },
      { maxConnectionPoolSize: 1, connectionAcquisitionTimeoutMs: 2000 },
    );
    const holder = driver.session();
    try {
      const tx = await holder.beginTransaction();
      await tx.run('RETURN 1');
      const [saturated] = await component.runOnce();
      assert.equal(saturated?.ok, false);
      assert.equal(saturated?.reason, 'timeout');
      assert.equal(saturated?.seconds, 0.3);
      assert.equal(
        await metricValue(registry, 'neo4j_probe_failures_total', { probe: 'acquisition', reason: 'timeout' }),
        1,
      );
      assert.equal(await metricValue(registry, 'neo4j_probe_up', { probe: 'acquisition' }), 0);
      assert.match((await component.readiness!()).detail ?? '', /acquisition:default timeout/);
      await tx.commit();
      // The acquisition the probe gave up on still completes; the probe must hand that connection back,
      // or every later run times out waiting for the pool's one connection.
      await eventually(async () => {
        const [recovered] = await component.runOnce();
        assert.equal(recovered?.ok, true, recovered?.error);
      }, 30_000);
      const idle = await driver.session().run('RETURN 1');
      assert.equal(idle.records.length, 1);
    } finally {
      await holder.close();
      await component.stop();
      await driver.close();
    }
  });

  it('fails fresh connect with reason auth when the credentials are wrong', async () => {
    const config = configFor({ freshConnect: { everyRuns: 1 }, census: { enabled: false } });
    const recorder = new Recorder({ sinks: [new PrometheusSink()] });
    const { driver, ownPool } = sidecarDriver(config, recorder);
    const component = createProbesComponent({
      config,
      driver,
      ownPool,
      recorder,
      createFreshDriver: () =>
        neo4j.driver(server.uri, neo4j.auth.basic(server.username, 'not-the-password'), {
          logging: { level: 'error', logger: () => {} },
        }),
    });
    try {
      const results = byProbe(await component.runOnce());
      assert.equal(results.fresh_connect?.ok, false);
      assert.equal(results.fresh_connect?.reason, 'auth');
      assert.match(results.fresh_connect?.error ?? '', /Neo\.ClientError\.Security\.Unauthorized/);
      // Fresh connect does not gate readiness by default.
      assert.deepEqual(await component.readiness!(), { ok: true });
    } finally {
      await component.stop();
      await driver.close();
    }
  });
});

describe('the probe schedule', () => {
  it('runs on a cron schedule with seconds and never overlaps runs', async () => {
    const recorder = new Recorder({ sinks: [new PrometheusSink()] });
    let running = 0;
    let mostAtOnce = 0;
    let runs = 0;
    const slowProbe = {
      probe: 'round_trip' as const,
      database: 'default',
      everyRuns: 1,
      gatesReadiness: true,
      async run() {
        running++;
        mostAtOnce = Math.max(mostAtOnce, running);
        // Longer than the one-second schedule: the next tick must be skipped, not stacked.
        await new Promise((resolve) => setTimeout(resolve, 1500));
        running--;
        runs++;
        return {};
      },
    };
    const scheduler = new ProbeScheduler({
      probes: [slowProbe],
      recorder,
      schedule: '* * * * * *',
      timeoutMs: 2500,
      jitterMs: 100,
    });
    scheduler.start();
    try {
      const joined = scheduler.runOnce();
      await joined;
      // Counted, not timed: the first run and two from the schedule, each one tick or more skipped.
      await eventually(() => assert.ok(runs >= 3, `ran ${runs} times`), 60_000);
    } finally {
      await scheduler.stop();
    }
    assert.equal(mostAtOnce, 1);
  });
});
