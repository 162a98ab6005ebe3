import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, maskConfig } from '../../src/config/index.ts';

function tempFile(name: string, content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'sidecar-config-'));
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function issuesOf(action: () => unknown): ConfigError['issues'] {
  try {
    action();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return error.issues;
  }
  assert.fail('expected the configuration to be rejected');
}

describe('loadConfig', () => {
  it('applies defaults: loopback listeners, StatsD off', () => {
    const config = loadConfig({ env: {} });
    assert.equal(config.http.host, '127.0.0.1');
    assert.equal(config.http.port, 9464);
    assert.equal(config.proxy.host, '127.0.0.1');
    assert.equal(config.statsd.enabled, false);
  });

  it('layers file, then the Neo4j env names, then SIDECAR__ env overrides', () => {
    const file = tempFile('c.yaml', 'neo4j:\n  uri: bolt://file:7687\nstatsd:\n  enabled: true\n  port: 9125\n');
    const config = loadConfig({
      file,
      env: { NEO4J_URI: 'neo4j://env:7687', NEO4J_USERNAME: 'reader', SIDECAR__STATSD__TAG_FORMAT: 'telegraf' },
    });
    assert.equal(config.neo4j.uri, 'neo4j://env:7687');
    assert.equal(config.neo4j.username, 'reader');
    assert.equal(config.statsd.enabled, true);
    assert.equal(config.statsd.port, 9125);
    assert.equal(config.statsd.tagFormat, 'telegraf');
  });

  it('reads the password from NEO4J_PASSWORD_FILE and masks it', () => {
    const secretFile = tempFile('pw', 's3cret-from-file\n');
    const config = loadConfig({ env: { NEO4J_URI: 'bolt://u:inline@h:7687', NEO4J_PASSWORD_FILE: secretFile } });
    assert.equal(config.neo4j.password, 's3cret-from-file');
    const masked = JSON.stringify(maskConfig(config));
    assert.doesNotMatch(masked, /s3cret-from-file|inline/);
  });

  it('names the field and the source of each bad value', () => {
    const issues = issuesOf(() =>
      loadConfig({ env: { SIDECAR__STATSD__PORT: '70000', SIDECAR__HTTP__BOGUS: 'x', NEO4J_URI: 'http://x' } }),
    );
    const byPath = new Map(issues.map((issue) => [issue.path, issue]));
    assert.match(byPath.get('statsd.port')?.message ?? '', /65535/);
    assert.equal(byPath.get('statsd.port')?.source, 'env SIDECAR__STATSD__PORT');
    assert.match(byPath.get('http.bogus')?.message ?? '', /unknown option/);
    assert.equal(byPath.get('neo4j.uri')?.source, 'env NEO4J_URI');
  });

  it('refuses a churn window that holds fewer than two censuses, naming the window', () => {
    // Census every 20th run of a 15 s schedule: every 5 minutes, so the default 5m window holds one.
    const issues = issuesOf(() => loadConfig({ env: { SIDECAR__PROBES__CENSUS__EVERY_RUNS: '20' } }));
    const issue = issues.find((found) => found.path === 'alerts.thresholds.connectionChurn.window');
    assert.match(issue?.message ?? '', /at least two censuses.*= 300 s/);
    assert.equal(loadConfig({ env: { SIDECAR__PROBES__CENSUS__EVERY_RUNS: '10' } }).probes.census.everyRuns, 10);
    const off = loadConfig({
      env: { SIDECAR__PROBES__CENSUS__EVERY_RUNS: '20', SIDECAR__PROBES__CENSUS__ENABLED: 'false' },
    });
    assert.equal(off.probes.census.enabled, false, 'no census, no churn from it to check');
  });

  it('refuses a query-statistics top N whose series would not fit metrics.maxSeriesPerMetric, naming topN', () => {
    const issues = issuesOf(() =>
      loadConfig({ env: { SIDECAR__QUERY_STATS__TOP_N: '400', SIDECAR__METRICS__MAX_SERIES_PER_METRIC: '1000' } }),
    );
    const issue = issues.find((found) => found.path === 'queryStats.topN');
    assert.match(issue?.message ?? '', /1200 quantile series, over metrics.maxSeriesPerMetric \(1000\)/);
    assert.equal(loadConfig({ env: { SIDECAR__QUERY_STATS__TOP_N: '333' } }).queryStats.topN, 333);
    const off = loadConfig({ env: { SIDECAR__QUERY_STATS__TOP_N: '400', SIDECAR__QUERY_STATS__ENABLED: 'false' } });
    assert.equal(off.queryStats.enabled, false, 'no statistics, no series to bound');
  });

  it('rejects an unknown key in the file with its path', () => {
    const file = tempFile('c.yaml', 'statsd:\n  enabled: true\n  hots: x\n');
    const issues = issuesOf(() => loadConfig({ file, env: {} }));
    assert.deepEqual(
      issues.map((issue) => issue.path),
      ['statsd.hots'],
    );
  });

  it('reports YAML syntax errors with the line', () => {
    const file = tempFile('c.yaml', 'http:\n  port: [1,\n');
    const issues = issuesOf(() => loadConfig({ file, env: {} }));
    assert.match(issues[0]!.message, /not valid YAML at line/);
  });

  it('refuses both a password and a password file', () => {
    const secretFile = tempFile('pw', 'x');
    const issues = issuesOf(() => loadConfig({ env: { NEO4J_PASSWORD: 'a', NEO4J_PASSWORD_FILE: secretFile } }));
    assert.equal(issues[0]!.path, 'neo4j.passwordFile');
  });

  it('reports an unreadable password file without its content', () => {
    const issues = issuesOf(() => loadConfig({ env: { NEO4J_PASSWORD_FILE: '/nonexistent/secret' } }));
    assert.equal(issues[0]!.path, 'neo4j.passwordFile');
    assert.match(issues[0]!.message, /ENOENT/);
  });
});
