/**
 * A whole sidecar (probes and alerts registered as in production) against a Neo4j of its own that is
 * stopped and started again: probes fail with reason `unavailable`, /readyz drops, the probe-down alert
 * fires, and everything recovers without restarting the sidecar.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { LocalNeo4j } from '../../scripts/neo4j/local-neo4j.ts';
import { type AlertEvaluator, alertsComponentFactory } from '../../src/alerts/index.ts';
import { configSchema } from '../../src/config/index.ts';
import { createLogger } from '../../src/logger.ts';
import { type ProbeResult, type ProbesComponent, probesComponentFactory } from '../../src/probe/index.ts';
import { type RunningSidecar, startSidecar } from '../../src/server/index.ts';
import { privateNeo4j } from '../support/neo4j.ts';
import { parseExposition } from '../support/prometheus-text.ts';

const PROBE_DOWN_SECONDS = 5;

let server: LocalNeo4j;
let sidecar: RunningSidecar;
let base: string;
let probes: ProbesComponent;
let alerts: AlertEvaluator;
const logLines: string[] = [];

/** /readyz follows a background check of Neo4j (every 2 s) besides the probes: poll it for a while. */
const READINESS_SETTLES_MS = 60_000;

before(async () => {
  server = await privateNeo4j('probe-outage');
  const config = configSchema.parse({
    neo4j: {
      uri: server.uri,
      password: server.password,
      connectionTimeoutMs: 2000,
      connectionAcquisitionTimeoutMs: 2000,
    },
    http: { port: 0 },
    // Not under test here, and prom-client may render an event-loop lag of NaN as "Nan".
    metrics: { processMetrics: false },
    proxy: { enabled: false },
    probes: { timeoutMs: 3000, census: { enabled: false }, freshConnect: { everyRuns: 1 } },
    // Well above one probe run (fresh connect against a just-restarted server can take a second or two
    // on a busy machine), so a run that just succeeded never counts as down.
    alerts: { thresholds: { probeDown: { warning: PROBE_DOWN_SECONDS, critical: null, for: '0s' } } },
  });
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => logLines.push(...chunk.toString().split('\n').filter(Boolean)));
  const logger = createLogger({ level: 'debug', pretty: 'never', destination: stream });
  sidecar = await startSidecar(config, { logger, components: [probesComponentFactory, alertsComponentFactory] });
  base = `http://127.0.0.1:${sidecar.httpAddress.port}`;
  probes = sidecar.components.find((component) => component.name === 'probes') as ProbesComponent;
  alerts = sidecar.components.find((component) => component.name === 'alerts') as AlertEvaluator;
});

after(async () => {
  await sidecar?.stop();
  await server?.destroy();
});

/** /readyz once it answers `status`, or its last answer when it did not within READINESS_SETTLES_MS. */
async function readyz(status: number): Promise<{ status: number; body: { ready: boolean; reason?: string } }> {
  const deadline = Date.now() + READINESS_SETTLES_MS;
  for (;;) {
    const response = await fetch(`${base}/readyz`);
    const answer = { status: response.status, body: (await response.json()) as { ready: boolean; reason?: string } };
    if (answer.status === status || Date.now() > deadline) return answer;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function gating(results: readonly ProbeResult[]): ProbeResult[] {
  return results.filter((result) => result.probe === 'acquisition' || result.probe === 'round_trip');
}

async function metric(name: string, labels: Record<string, string>): Promise<number | undefined> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const samples = parseExposition(text).samples.filter(
    (sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  );
  return samples.length === 0 ? undefined : samples.reduce((sum, sample) => sum + sample.value, 0);
}

describe('probes through a Neo4j outage', () => {
  it('report ready, then unavailable and not ready while Neo4j is down, then recover without a restart', async () => {
    await probes.runOnce();
    const healthy = await probes.runOnce();
    const healthyAt = Date.now();
    assert.ok(gating(healthy).every((result) => result.ok));
    assert.equal((await readyz(200)).status, 200);
    const status = (await (await fetch(`${base}/status`)).json()) as {
      probes: { results: Record<string, ProbeResult> };
    };
    assert.equal(status.probes.results['acquisition:default']?.ok, true);

    await server.stop();
    const down = await probes.runOnce();
    for (const result of down) {
      assert.equal(result.ok, false, `${result.probe} should fail while Neo4j is down`);
      assert.equal(result.reason, 'unavailable', `${result.probe}: ${result.error}`);
    }
    assert.ok(
      ((await metric('neo4j_probe_failures_total', { probe: 'acquisition', reason: 'unavailable' })) ?? 0) >= 1,
    );
    assert.equal(await metric('neo4j_probe_up', { probe: 'round_trip' }), 0);
    const notReady = await readyz(503);
    assert.equal(notReady.status, 503);
    assert.match(notReady.body.reason ?? '', /probes: .*acquisition:default unavailable/);
    // The alert is about time since the last success beyond the probe's own interval: wait until that
    // surely exceeds the threshold.
    const intervalSeconds = await metric('neo4j_probe_interval_seconds', { probe: 'round_trip' });
    assert.ok(intervalSeconds !== undefined && intervalSeconds > 0, 'the probe exports its interval');
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, healthyAt + (PROBE_DOWN_SECONDS + intervalSeconds) * 1000 + 500 - Date.now())),
    );
    const firing = alerts.evaluate().filter((alert) => alert.state === 'firing');
    assert.ok(
      firing.some((alert) => alert.alert === 'Neo4jPoolProbeDown' && alert.labels.probe === 'round_trip'),
      JSON.stringify(firing),
    );
    assert.equal(await metric('neo4j_sidecar_alert_active', { alert: 'Neo4jPoolProbeDown', severity: 'warning' }), 1);
    const failingLines = logLines.filter((line) => line.includes('probe round_trip failing'));
    await probes.runOnce();
    assert.equal(
      logLines.filter((line) => line.includes('probe round_trip failing')).length,
      failingLines.length,
      'a failure is logged when it starts, not on every run',
    );

    await server.start();
    let recovered: ProbeResult[] = [];
    // The first run after a restart may still meet a connection the dead server left in the pool.
    for (let attempt = 0; attempt < 60; attempt++) {
      recovered = await probes.runOnce();
      if (gating(recovered).every((result) => result.ok)) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    assert.ok(
      recovered.every((result) => result.ok),
      JSON.stringify(recovered),
    );
    // Evaluated right after the successful run: the time since the last success is back near zero.
    assert.deepEqual(
      alerts.evaluate().filter((alert) => alert.state === 'firing'),
      [],
    );
    assert.equal(await metric('neo4j_sidecar_alert_active', { alert: 'Neo4jPoolProbeDown', severity: 'warning' }), 0);
    assert.equal((await readyz(200)).status, 200);
    assert.ok(logLines.some((line) => line.includes('probe round_trip recovered')));
    assert.ok(logLines.some((line) => line.includes('Neo4jPoolProbeDown (warning) resolved')));

    // The driver's warnings became one line per change of state, not one (with a stack) per connection
    // attempt: the outage and the recovery, and should a connection the dead server left behind fail
    // after the recovery, one more pair.
    const driverLines = logLines
      .map((line) => JSON.parse(line) as { component?: string; level: number; msg: string; suppressed?: number })
      .filter((line) => line.component === 'driver');
    const states = driverLines.map((line) => (line.msg.startsWith('Neo4j unreachable') ? 'down' : line.msg));
    assert.ok(states.length >= 2 && states.length <= 4, JSON.stringify(driverLines));
    assert.deepEqual(
      states,
      states.map((_, i) => (i % 2 === 0 ? 'down' : 'Neo4j reachable again')),
      JSON.stringify(driverLines),
    );
    const folded = driverLines.reduce((sum, line) => sum + (line.suppressed ?? 0), 0);
    const attempts = (await metric('neo4j_probe_failures_total', { reason: 'unavailable' })) ?? 0;
    assert.ok(attempts >= 3, `sanity: the probes tried Neo4j while it was down (${attempts})`);
    assert.ok(folded >= 2, `the warnings of the connection attempts were folded into the state lines (${folded})`);
    assert.ok(
      logLines.every((line) => !/Stacktrace|\\n\s+at /.test(line)),
      'no stack trace in the log',
    );
  });
});
