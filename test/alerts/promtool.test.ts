/**
 * The rendered Prometheus rules pass `promtool check rules`, and `promtool test rules` with series
 * generated from the thresholds: each alert is pending one evaluation before its `for` boundary and
 * firing at it, with the expected labels and annotations; series below the levels never fire. Run for
 * the default thresholds and for a custom threshold file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify as toYaml } from 'yaml';
import { ensurePromtool, runPromtool } from '../../scripts/tools/promtool.ts';
import { renderRules, renderRulesYaml } from '../../src/alerts/index.ts';
import { THRESHOLD_KEYS } from '../../src/alerts/thresholds.ts';
import type { AlertsConfig } from '../../src/config/alerts.ts';
import { loadConfig } from '../../src/config/index.ts';
import { generateCases, promtoolTestFile } from './promtool-cases.ts';

const CUSTOM_THRESHOLDS = `
alerts:
  prometheus:
    namePrefix: GraphDb
    groupName: graph-db-pools
    selector: 'job="neo4j-sidecar"'
    runbookUrlTemplate: 'https://runbooks.example.com/neo4j/%s'
    labels:
      team: graph
  thresholds:
    acquisitionLatency: { warning: 0.25, critical: null, for: 45s }
    poolUtilization: { warning: 0.5, critical: 0.75, for: 1m }
    pendingAcquisitions: { enabled: false }
    acquisitionTimeouts: { warning: 3, critical: 40, window: 2m, for: 30s }
    queryErrorRatio: { warning: 0.01, critical: 0.2, window: 1m, for: 1m }
    probeDown: { warning: 30, critical: 90, for: 15s }
    connectionChurn: { warning: 0.2, critical: 5, window: 1m, for: 2m }
    longRunningTransactions: { warning: 30, critical: 60, for: 1m }
    credentialsRejected: { warning: null, critical: 120, for: 30s }
    proxyClientsHeld: { warning: 2, critical: 5, for: 30s }
    proxyHoldTimeouts: { warning: 2, critical: 20, window: 1m }
    proxyPaused: { warning: 30, critical: 90 }
    proxyPauseExpired: { warning: 1, critical: 3, window: 5m }
    proxyIdleTransactionTimeouts: { warning: 3, critical: null, window: 2m, for: 30s }
    proxyRoutingFailovers: { warning: 2, critical: 8, window: 5m, for: 1m }
`;

let workDir: string;

before(async () => {
  await ensurePromtool((line) => console.log(line));
  workDir = mkdtempSync(join(tmpdir(), 'promtool-rules-'));
});

after(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

function defaultConfig(): AlertsConfig {
  return loadConfig({ env: {} }).alerts;
}

function customConfig(): AlertsConfig {
  const file = join(workDir, 'custom-thresholds.yaml');
  writeFileSync(file, CUSTOM_THRESHOLDS);
  return loadConfig({ file, env: {} }).alerts;
}

async function checkAndTest(
  name: string,
  config: AlertsConfig,
  labels: Record<string, string>,
  decoy?: Record<string, string>,
) {
  const rulesFile = join(workDir, `${name}-rules.yaml`);
  writeFileSync(rulesFile, renderRulesYaml(config));
  const check = await runPromtool(['check', 'rules', rulesFile]);
  assert.equal(check.code, 0, `promtool check rules failed:\n${check.stdout}\n${check.stderr}`);

  const cases = generateCases(config, { seriesLabels: labels, ...(decoy ? { decoyLabels: decoy } : {}) });
  const testFile = join(workDir, `${name}-tests.yaml`);
  writeFileSync(testFile, toYaml(promtoolTestFile(`${name}-rules.yaml`, cases), { lineWidth: 0 }));
  const test = await runPromtool(['test', 'rules', testFile], workDir);
  assert.equal(test.code, 0, `promtool test rules failed:\n${test.stdout}\n${test.stderr}`);
  return cases;
}

describe('Prometheus rules rendered from the thresholds', () => {
  it('pass promtool check and unit tests at the for boundary with the default thresholds', async () => {
    const config = defaultConfig();
    const cases = await checkAndTest('default', config, { job: 'neo4j-pool-sidecar', instance: 'app-0:9464' });
    const names = new Set(renderRules(config).groups[0]!.rules.map((rule) => rule.alert));
    assert.equal(names.size, THRESHOLD_KEYS.length, 'one alert name per threshold');
    for (const name of names) {
      const mine = cases.filter((generated) => generated.group.name.startsWith(`${name}:`));
      assert.ok(
        mine.some((generated) => generated.fires.includes('warning')),
        `${name}: a case fires warning`,
      );
      assert.ok(
        mine.some((generated) => generated.fires.includes('critical')),
        `${name}: a case fires critical`,
      );
      assert.ok(
        mine.some((generated) => generated.fires.length === 0),
        `${name}: a case stays quiet`,
      );
      const warningOnly = mine.some((generated) =>
        generated.group.alert_rule_test.some(
          (check) =>
            check.exp_alerts.length > 0 && check.exp_alerts.every((alert) => alert.exp_labels.severity === 'warning'),
        ),
      );
      assert.ok(warningOnly, `${name}: some evaluation expects the warning alone`);
    }
  });

  it('follow a custom threshold file: names, selector, levels, for, windows, disabled alerts, extra labels', async () => {
    const config = customConfig();
    const rendered = renderRules(config);
    assert.equal(rendered.groups[0]!.name, 'graph-db-pools');
    const names = new Set(rendered.groups[0]!.rules.map((rule) => rule.alert));
    assert.ok(!names.has('GraphDbPendingAcquisitions'), 'a disabled threshold renders no rule');
    assert.ok(names.has('GraphDbUtilizationHigh'));
    const latency = rendered.groups[0]!.rules.filter((rule) => rule.alert === 'GraphDbAcquisitionLatencyHigh');
    assert.deepEqual(
      latency.map((rule) => rule.labels.severity),
      ['warning'],
      'a null level renders no rule for that severity',
    );
    for (const rule of rendered.groups[0]!.rules) {
      assert.equal(rule.labels.team, 'graph');
      assert.match(rule.expr, /job="neo4j-sidecar"/);
      assert.match(rule.annotations.runbook_url, /^https:\/\/runbooks\.example\.com\/neo4j\/[a-z-]+$/);
    }
    const cases = await checkAndTest(
      'custom',
      config,
      { job: 'neo4j-sidecar', instance: 'app-1:9464' },
      { job: 'someone-else', instance: 'x:1' },
    );
    assert.ok(cases.some((generated) => generated.group.name.startsWith('GraphDbUtilizationHigh:')));
  });
});
