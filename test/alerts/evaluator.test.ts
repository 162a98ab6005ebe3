/**
 * The sidecar's own alert evaluation on live numbers from a real driver and the real probes: a
 * saturated pool fires the acquisition-latency alert and releasing it clears it; `for` is honoured;
 * transitions are logged once and sent as StatsD events; and one edited threshold in the config file
 * moves both the sidecar's alert state and the rendered Prometheus rules.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import neo4j, { type Driver } from 'neo4j-driver';
import { parse as parseYaml } from 'yaml';
import { AlertEvaluator, type PrometheusRuleFile, renderRules } from '../../src/alerts/index.ts';
import { main } from '../../src/cli.ts';
import { defaultCommands } from '../../src/components.ts';
import { configSchema, loadConfig, type SidecarConfig, type SidecarConfigInput } from '../../src/config/index.ts';
import { instrumentDriver } from '../../src/instrument/index.ts';
import { createLogger } from '../../src/logger.ts';
import { probe as probeMetrics, proxy as proxyMetrics } from '../../src/metrics/catalogue.ts';
import { PrometheusSink, Recorder, StatsdSink } from '../../src/metrics/index.ts';
import { createProbesComponent } from '../../src/probe/index.ts';
import { eventually } from '../support/eventually.ts';
import { metricValue } from '../support/metrics.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';

let server: TestNeo4j;
let workDir: string;
before(async () => {
  server = await sharedNeo4j();
  workDir = mkdtempSync(join(tmpdir(), 'alerts-'));
});
after(async () => {
  rmSync(workDir, { recursive: true, force: true });
  await releaseSharedNeo4j();
});

function captureLogs() {
  const stream = new PassThrough();
  const lines: string[] = [];
  stream.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)));
  return { logger: createLogger({ level: 'debug', pretty: 'never', destination: stream }), lines };
}

async function udpListener(): Promise<{ socket: Socket; port: number; packets: string[] }> {
  const socket = createSocket('udp4');
  const packets: string[] = [];
  socket.on('message', (message) => packets.push(...message.toString().split('\n')));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { socket, port: socket.address().port, packets };
}

/** A sidecar-like setup: an instrumented pool of `poolSize`, the probes on it, and the recorder. */
function sidecarParts(config: SidecarConfig, sinks: { statsd?: StatsdSink } = {}) {
  const prometheus = new PrometheusSink();
  const recorder = new Recorder({ sinks: sinks.statsd ? [prometheus, sinks.statsd] : [prometheus] });
  const driver: Driver = neo4j.driver(server.uri, neo4j.auth.basic(server.username, server.password), {
    maxConnectionPoolSize: config.neo4j.maxConnectionPoolSize,
    connectionAcquisitionTimeout: config.neo4j.connectionAcquisitionTimeoutMs,
    logging: { level: 'error', logger: () => {} },
  });
  const ownPool = instrumentDriver(driver, { recorder, poolName: 'sidecar', source: 'sidecar' });
  const probes = createProbesComponent({ config, driver, ownPool, recorder });
  return { recorder, registry: prometheus.registry, driver, probes };
}

function configWith(input: SidecarConfigInput): SidecarConfig {
  return configSchema.parse({
    ...input,
    neo4j: { uri: server.uri, password: server.password, ...input.neo4j },
  });
}

describe('alert evaluation in the sidecar', () => {
  it('fires the acquisition-latency alert while the pool is saturated and clears it once released', async () => {
    const config = configWith({
      neo4j: { maxConnectionPoolSize: 2, connectionAcquisitionTimeoutMs: 2000 },
      // The saturated probe times out at 1 s, above both levels; a healthy acquisition from the warm pool
      // stays below the warning level on a loaded machine too (at 100 ms it could cross it).
      probes: {
        timeoutMs: 1000,
        roundTrip: { enabled: false },
        freshConnect: { enabled: false },
        census: { enabled: false },
      },
      statsd: { enabled: true },
      alerts: { thresholds: { acquisitionLatency: { warning: 0.5, critical: 0.8, for: '0s' } } },
    });
    const udp = await udpListener();
    const statsd = new StatsdSink({
      host: '127.0.0.1',
      port: udp.port,
      prefix: 'neo4j.',
      tagFormat: 'dogstatsd',
      sampleRate: 1,
      maxBufferSize: 0,
      flushIntervalMs: 50,
    });
    const { recorder, registry, driver, probes } = sidecarParts(config, { statsd });
    const logs = captureLogs();
    const evaluator = new AlertEvaluator({ config: config.alerts, recorder, logger: logs.logger, events: statsd });
    const holders = [driver.session(), driver.session()];
    try {
      // A warm pool: the first acquisition would include creating the connection.
      await driver.executeQuery('RETURN 1');
      await probes.runOnce();
      assert.deepEqual(evaluator.evaluate(), []);

      const transactions = await Promise.all(holders.map((session) => session.beginTransaction()));
      await Promise.all(transactions.map((tx) => tx.run('RETURN 1')));
      const [saturated] = await probes.runOnce();
      assert.equal(saturated?.reason, 'timeout');
      const firing = evaluator.evaluate().filter((alert) => alert.state === 'firing');
      assert.deepEqual(
        firing.map((alert) => `${alert.alert}/${alert.severity}/${alert.state}`),
        ['Neo4jPoolAcquisitionLatencyHigh/critical/firing', 'Neo4jPoolAcquisitionLatencyHigh/warning/firing'],
      );
      assert.equal(firing[0]!.labels.database, 'default');
      assert.equal(
        firing[0]!.description,
        'The acquisition probe took 1s to get a connection from the sidecar pool for database default (threshold 800ms).',
      );
      for (const severity of ['warning', 'critical']) {
        assert.equal(
          await metricValue(registry, 'neo4j_sidecar_alert_active', {
            alert: 'Neo4jPoolAcquisitionLatencyHigh',
            severity,
          }),
          1,
        );
      }
      const status = evaluator.status() as { active: Array<{ alert: string }> };
      assert.equal(status.active.length, 2);
      evaluator.evaluate();
      assert.equal(
        logs.lines.filter((line) => line.includes('Neo4jPoolAcquisitionLatencyHigh (warning) firing')).length,
        1,
        'a transition is logged once, not on every evaluation',
      );
      await eventually(() =>
        assert.ok(
          udp.packets.some((packet) => packet.includes('Neo4jPoolAcquisitionLatencyHigh critical firing')),
          'a StatsD event for the firing critical alert',
        ),
      );
      const event = udp.packets.find((packet) => packet.includes('Neo4jPoolAcquisitionLatencyHigh critical firing'))!;
      assert.match(event, /^_e\{\d+,\d+\}:/);
      assert.match(event, /\|t:error/);
      assert.match(event, /#.*alert:Neo4jPoolAcquisitionLatencyHigh/);

      await Promise.all(transactions.map((tx) => tx.commit()));
      const [released] = await probes.runOnce();
      assert.equal(released?.ok, true, released?.error);
      assert.deepEqual(
        evaluator.evaluate().filter((alert) => alert.state === 'firing'),
        [],
      );
      assert.equal(
        await metricValue(registry, 'neo4j_sidecar_alert_active', {
          alert: 'Neo4jPoolAcquisitionLatencyHigh',
          severity: 'critical',
        }),
        0,
      );
      assert.equal(
        logs.lines.filter((line) => line.includes('Neo4jPoolAcquisitionLatencyHigh (critical) resolved')).length,
        1,
      );
      await eventually(() =>
        assert.ok(
          udp.packets.some((packet) => packet.includes('Neo4jPoolAcquisitionLatencyHigh critical resolved')),
          'a StatsD event for the resolved alert',
        ),
      );
    } finally {
      await Promise.all(holders.map((session) => session.close()));
      await probes.stop();
      await driver.close();
      await statsd.close();
      udp.socket.close();
    }
  });

  it('keeps an alert pending until its level has held for the `for` duration, as Prometheus does', async () => {
    const config = configWith({
      neo4j: { maxConnectionPoolSize: 4 },
      probes: { census: { enabled: false }, freshConnect: { enabled: false }, roundTrip: { enabled: false } },
      alerts: {
        thresholds: {
          pendingAcquisitions: { enabled: false },
          poolUtilization: { warning: 0.5, critical: null, for: '30s' },
        },
      },
    });
    const { recorder, driver, probes } = sidecarParts(config);
    const evaluator = new AlertEvaluator({ config: config.alerts, recorder });
    const holders = [driver.session(), driver.session()];
    try {
      const transactions = await Promise.all(holders.map((session) => session.beginTransaction()));
      await Promise.all(transactions.map((tx) => tx.run('RETURN 1')));
      const start = Date.now();
      const states = [0, 15_000, 29_999, 30_000].map((offset) =>
        evaluator
          .evaluate(start + offset)
          .filter((alert) => alert.alert === 'Neo4jPoolUtilizationHigh')
          .map((alert) => alert.state)
          .join(),
      );
      assert.deepEqual(states, ['pending', 'pending', 'pending', 'firing']);
      await Promise.all(transactions.map((tx) => tx.rollback()));
      assert.deepEqual(evaluator.evaluate(start + 31_000), []);
    } finally {
      await Promise.all(holders.map((session) => session.close()));
      await probes.stop();
      await driver.close();
    }
  });

  it('follows one threshold edited in the config file, in its own state and in the rendered rules', async () => {
    const file = join(workDir, 'sidecar.yaml');
    const env = { NEO4J_URI: server.uri, NEO4J_PASSWORD: server.password };
    const renderedRule = async () => {
      let stdout = '';
      const code = await main(
        ['rules', '--config', file],
        { stdout: (text) => (stdout += text), stderr: () => {}, env },
        { commands: defaultCommands },
      );
      assert.equal(code, 0);
      const rules = (parseYaml(stdout) as PrometheusRuleFile).groups[0]!.rules;
      return rules.find((rule) => rule.alert === 'Neo4jPoolUtilizationHigh' && rule.labels.severity === 'warning')!;
    };
    const ownState = async (config: SidecarConfig, driver: Driver, recorder: Recorder) => {
      const evaluator = new AlertEvaluator({ config: config.alerts, recorder });
      const holder = driver.session();
      const tx = await holder.beginTransaction();
      try {
        await tx.run('RETURN 1');
        const now = Date.now();
        const pending = evaluator.evaluate(now).filter((alert) => alert.alert === 'Neo4jPoolUtilizationHigh');
        const later = evaluator
          .evaluate(now + 5 * 60_000)
          .filter((alert) => alert.alert === 'Neo4jPoolUtilizationHigh');
        return { pending: pending.map((alert) => alert.state), later: later.map((alert) => alert.state) };
      } finally {
        await tx.rollback();
        await holder.close();
      }
    };

    writeFileSync(file, 'neo4j:\n  maxConnectionPoolSize: 2\n');
    const before = loadConfig({ file, env });
    const first = sidecarParts(before);
    try {
      // One of two connections in use: 50 %, below the default warning level of 80 %.
      assert.deepEqual(await ownState(before, first.driver, first.recorder), { pending: [], later: [] });
      const rule = await renderedRule();
      assert.match(rule.expr, />= 0\.8$/);
    } finally {
      await first.driver.close();
    }

    writeFileSync(
      file,
      'neo4j:\n  maxConnectionPoolSize: 2\nalerts:\n  thresholds:\n    poolUtilization:\n      warning: 0.5\n',
    );
    const edited = loadConfig({ file, env });
    const second = sidecarParts(edited);
    try {
      assert.deepEqual(await ownState(edited, second.driver, second.recorder), {
        pending: ['pending'],
        later: ['firing'],
      });
      const rule = await renderedRule();
      assert.equal(rule.expr, '(neo4j_driver_connections_in_use / neo4j_driver_connections_max) >= 0.5');
      assert.equal(rule.for, '5m');
      assert.match(rule.annotations.description, /\(threshold 50%\)/);
    } finally {
      await second.driver.close();
    }
  });

  it('counts the churn the Bolt proxy sees, per client family, from the counter the proxy records', () => {
    const proxyConnectionsOpened = proxyMetrics.clientConnectionsOpened;
    const recorder = new Recorder({ sinks: [new PrometheusSink()] });
    const config = configWith({
      alerts: { thresholds: { connectionChurn: { warning: 0.5, critical: 5, window: '30s', for: '0s' } } },
    });
    const evaluator = new AlertEvaluator({ config: config.alerts, recorder });
    const start = Date.now();
    evaluator.evaluate(start);
    recorder.counter(proxyConnectionsOpened).inc({ user_agent: 'neo4j-python/5' }, 30);
    recorder.counter(proxyConnectionsOpened).inc({ user_agent: 'neo4j-java/5' }, 1);
    evaluator.evaluate(start + 5_000);
    recorder.counter(proxyConnectionsOpened).inc({ user_agent: 'neo4j-python/5' }, 30);
    const firing = evaluator.evaluate(start + 10_000).filter((alert) => alert.state === 'firing');
    assert.deepEqual(
      firing.map((alert) => `${alert.severity}/${alert.labels.user_agent}/${alert.value}`),
      ['critical/neo4j-python/5/6', 'warning/neo4j-python/5/6'],
    );
    assert.equal(
      firing[1]!.description,
      'Clients of family neo4j-python/5 opened 6 new connections per second through the Bolt proxy over the last 30s (threshold 500m/s).',
    );
  });

  it('allows each probe its own interval before ProbeDown, at the boundary the rendered rule has', () => {
    const recorder = new Recorder({ sinks: [new PrometheusSink()] });
    const config = configWith({});
    const evaluator = new AlertEvaluator({ config: config.alerts, recorder });
    const succeededAt = 1_800_000_000_000;
    const lastSuccess = recorder.gauge(probeMetrics.lastSuccess);
    const interval = recorder.gauge(probeMetrics.interval);
    lastSuccess.set({ probe: 'round_trip', database: 'default' }, succeededAt / 1000);
    interval.set({ probe: 'round_trip', database: 'default' }, 15);
    lastSuccess.set({ probe: 'fresh_connect', database: '' }, succeededAt / 1000);
    interval.set({ probe: 'fresh_connect', database: '' }, 300);
    // No interval, no evaluation: PromQL's one-to-one match drops such a series too.
    lastSuccess.set({ probe: 'census', database: '' }, succeededAt / 1000);

    const firingAfter = (seconds: number) =>
      evaluator
        .evaluate(succeededAt + seconds * 1000)
        .filter((alert) => alert.alert === 'Neo4jPoolProbeDown' && alert.state === 'firing')
        .map((alert) => `${alert.labels.probe}/${alert.severity}`)
        .sort();
    // Default levels 60 s and 300 s, each on top of the probe's interval.
    assert.deepEqual(firingAfter(74.999), []);
    assert.deepEqual(firingAfter(75), ['round_trip/warning']);
    assert.deepEqual(firingAfter(314.999), ['round_trip/warning']);
    assert.deepEqual(firingAfter(315), ['round_trip/critical', 'round_trip/warning']);
    assert.deepEqual(firingAfter(359.999), ['round_trip/critical', 'round_trip/warning']);
    assert.deepEqual(firingAfter(360), ['fresh_connect/warning', 'round_trip/critical', 'round_trip/warning']);
    assert.deepEqual(firingAfter(600), [
      'fresh_connect/critical',
      'fresh_connect/warning',
      'round_trip/critical',
      'round_trip/warning',
    ]);
    const described = evaluator.list().find((alert) => alert.labels.probe === 'fresh_connect');
    assert.equal(
      described?.description,
      'The fresh_connect probe has not succeeded for 10m 0s (threshold: its interval plus 5m 0s).',
    );

    const rules = renderRules(config.alerts).groups[0]!.rules.filter((rule) => rule.alert === 'Neo4jPoolProbeDown');
    assert.deepEqual(
      rules.map((rule) => rule.expr),
      [
        '(time() - neo4j_probe_last_success_timestamp_seconds) >= (neo4j_probe_interval_seconds) + 60',
        '(time() - neo4j_probe_last_success_timestamp_seconds) >= (neo4j_probe_interval_seconds) + 300',
      ],
    );
  });

  it('refuses a threshold file whose critical level is below its warning level, naming the option', async () => {
    const file = join(workDir, 'bad.yaml');
    writeFileSync(file, 'alerts:\n  thresholds:\n    pendingAcquisitions: { warning: 5, critical: 2 }\n');
    let stderr = '';
    const code = await main(
      ['rules', '--config', file],
      { stdout: () => {}, stderr: (text) => (stderr += text), env: {} },
      { commands: defaultCommands },
    );
    assert.equal(code, 2);
    assert.match(stderr, /alerts\.thresholds\.pendingAcquisitions\.critical.*must not be below the warning level/);
  });
});
