/**
 * A default deployment pages nobody: the real CLI against a healthy real Neo4j (a server of this
 * file's own, so no other test's connections or transactions count) fires no alert.
 *
 * Two runs at once. One with nothing configured but free ports, watched for 80 s: past the ProbeDown
 * warning level (60 s) plus one evaluation interval (15 s), where the fresh-connect probe (every 20th
 * run, 5 minutes) used to fire between its runs. And one on the same cadence scaled down 5 times
 * (schedule every 3 s instead of 15 s, every duration and age level divided by 5, the same everyRuns),
 * watched for one whole fresh-connect period plus the warning level, which the default run cannot
 * afford (6 minutes): both fresh-connect runs succeed and nothing fires between them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { LocalNeo4j } from '../../scripts/neo4j/local-neo4j.ts';
import { spawnSidecarCli } from '../support/cli.ts';
import { privateNeo4j } from '../support/neo4j.ts';
import { parseExposition } from '../support/prometheus-text.ts';

const SCALE = 5;
// The probe timeout is scaled less (5 s to 1.25 s, the most a 3 s schedule allows): on this shared
// machine a cold first census can take over a second, and a probe timing out is not what this is about.
const SCALED_CONFIG = `
probes:
  schedule: '*/3 * * * * *'   # 15 s / ${SCALE}
  timeoutMs: 1250
  jitterMs: 200
  census: { longTransactionSeconds: 6 }
  sizing: { windowSeconds: 60 }
alerts:
  evaluationIntervalSeconds: 3
  thresholds:
    acquisitionLatency: { for: 24s }
    poolUtilization: { for: 60s }
    pendingAcquisitions: { for: 24s }
    proxyPoolWaiting: { for: 24s }
    acquisitionTimeouts: { window: 60s }
    queryErrorRatio: { for: 60s, window: 60s }
    probeDown: { warning: 12, critical: 60 }
    connectionChurn: { for: 120s, window: 60s }
    longRunningTransactions: { warning: 24, critical: 180 }
`;

interface AlertsStatus {
  evaluatedAt: string | null;
  active: Array<{ alert: string; severity: string; labels: Record<string, string>; description: string }>;
  pending: Array<{ alert: string; severity: string; labels: Record<string, string>; description: string }>;
}

let neo4j: LocalNeo4j;
let workDir: string;
before(async () => {
  neo4j = await privateNeo4j('quiet-defaults');
  workDir = mkdtempSync(join(tmpdir(), 'quiet-defaults-'));
});
after(async () => {
  await neo4j?.destroy();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

async function metricSamples(httpUrl: string, name: string) {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  return parseExposition(text).samples.filter((sample) => sample.name === name);
}

/**
 * Runs the CLI for `watchMs`, reading /status every second: never an active (firing) alert, and
 * never a ProbeDown instance in any state. Returns the last /status alerts section. (Other pending
 * alerts are allowed: a slow acquisition on this busy shared machine may start a `for` it never completes.)
 */
async function watchCli(args: string[], watchMs: number) {
  const sidecar = await spawnSidecarCli(args, { NEO4J_URI: neo4j.uri, NEO4J_PASSWORD: neo4j.password });
  try {
    assert.ok(await sidecar.waitForOk('/readyz', 120_000), `the sidecar never became ready:\n${sidecar.logs()}`);
    const startedAt = Date.now();
    let last: AlertsStatus | undefined;
    while (Date.now() - startedAt < watchMs) {
      const status = (await (await fetch(`${sidecar.httpUrl}/status`)).json()) as { alerts: AlertsStatus };
      last = status.alerts;
      const listed = (list: AlertsStatus['active']) => list.map((alert) => alert.description).join('\n');
      const warnings = () =>
        sidecar
          .logs()
          .split('\n')
          .filter((line) => /"level":[456]0/.test(line))
          .join('\n');
      assert.deepEqual(
        last.active,
        [],
        `alerts fired on a healthy server:\n${listed(last.active)}\nwarnings and errors logged:\n${warnings()}`,
      );
      const probeDown = last.pending.filter((alert) => alert.alert === 'Neo4jPoolProbeDown');
      assert.deepEqual(probeDown, [], `ProbeDown pending on a healthy server:\n${listed(probeDown)}`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    assert.ok(last?.evaluatedAt, 'the alerts were evaluated');
    return { sidecar, startedAt, last };
  } catch (error) {
    await sidecar.stop();
    throw error;
  }
}

describe('a healthy Neo4j with the default configuration', { concurrency: true }, () => {
  it('fires no alert through the real CLI with nothing configured, past the old 60 s ProbeDown level', async () => {
    const { sidecar, last } = await watchCli(['run'], 80_000);
    try {
      const [freshConnect] = (
        await metricSamples(sidecar.httpUrl, 'neo4j_probe_last_success_timestamp_seconds')
      ).filter((sample) => sample.labels.probe === 'fresh_connect');
      assert.ok(freshConnect, 'the fresh-connect probe ran');
      // An evaluation came 60 s or more after its success, where the old rule fired its warning.
      assert.ok(
        Date.parse(last.evaluatedAt!) >= freshConnect.value * 1000 + 60_000,
        `last evaluated at ${last.evaluatedAt}, fresh connect succeeded at ${new Date(freshConnect.value * 1000).toISOString()}`,
      );
      const intervals = await metricSamples(sidecar.httpUrl, 'neo4j_probe_interval_seconds');
      assert.deepEqual(
        Object.fromEntries(intervals.map((sample) => [sample.labels.probe, sample.value])),
        { acquisition: 15, round_trip: 15, fresh_connect: 300, census: 15 },
        'each probe exports its own interval: the schedule times its everyRuns',
      );
    } finally {
      await sidecar.stop();
    }
  });

  it(`fires no alert over a whole fresh-connect period on the default cadence scaled down ${SCALE} times`, async () => {
    const file = join(workDir, 'scaled.yaml');
    writeFileSync(file, SCALED_CONFIG);
    // Fresh connect runs at run 0 and run 20 (60 s); a probe 12 s late would fire from 72 s.
    const { sidecar, startedAt } = await watchCli(['run', '--config', file], 80_000);
    try {
      const [freshConnect] = (
        await metricSamples(sidecar.httpUrl, 'neo4j_probe_last_success_timestamp_seconds')
      ).filter((sample) => sample.labels.probe === 'fresh_connect');
      assert.ok(
        freshConnect && freshConnect.value * 1000 >= startedAt + 45_000,
        'the fresh-connect probe succeeded a second time, 20 runs after its first',
      );
      const [interval] = (await metricSamples(sidecar.httpUrl, 'neo4j_probe_interval_seconds')).filter(
        (sample) => sample.labels.probe === 'fresh_connect',
      );
      assert.equal(interval?.value, 60);
    } finally {
      await sidecar.stop();
    }
  });
});
