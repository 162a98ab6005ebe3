/**
 * Alert transitions as the real CLI logs them: a run in which a warning and a critical alert fire and
 * resolve (query errors through the Bolt proxy), read back line by line. No line carries a key twice
 * (checked on the text: JSON.parse would quietly keep the last `level`), and every transition is
 * logged at its severity's pino level: warn when a warning fires, error when a critical fires, info when
 * either resolves.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import neo4j from 'neo4j-driver';
import { spawnSidecarCli } from '../support/cli.ts';
import { duplicateJsonKeys } from '../support/json-keys.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';

const ALERT = 'Neo4jPoolQueryErrorsHigh';
const PINO_LEVEL = { info: 30, warn: 40, error: 50 } as const;

let server: TestNeo4j;
let workDir: string;
before(async () => {
  server = await sharedNeo4j();
  workDir = mkdtempSync(join(tmpdir(), 'alert-logs-'));
});
after(async () => {
  rmSync(workDir, { recursive: true, force: true });
  await releaseSharedNeo4j();
});

interface LogLine {
  level: number;
  msg: string;
  component?: string;
  alert?: string;
  severity?: string;
  threshold?: number;
}

describe('alert transitions in the log of the real CLI', () => {
  it('carry no duplicate key and are logged at the level of their severity', async () => {
    const file = join(workDir, 'sidecar.yaml');
    writeFileSync(
      file,
      [
        'alerts:',
        '  evaluationIntervalSeconds: 1',
        '  thresholds:',
        '    queryErrorRatio: { warning: 0.05, critical: 0.25, for: 0s, window: 10m }',
        '',
      ].join('\n'),
    );
    const sidecar = await spawnSidecarCli(['run', '--config', file], {
      NEO4J_URI: server.uri,
      NEO4J_PASSWORD: server.password,
    });
    let stdout = '';
    sidecar.child.stdout?.on('data', (chunk: string) => (stdout += chunk));
    const transitions = () =>
      stdout
        .split('\n')
        .filter((line) => line.includes(`"alert":"${ALERT}"`))
        .map((line) => JSON.parse(line) as LogLine);
    const waitForTransition = async (message: string) => {
      for (let i = 0; i < 150 && !transitions().some((line) => line.msg.startsWith(message)); i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.ok(
        transitions().some((line) => line.msg.startsWith(message)),
        `no "${message}" line in the log:\n${sidecar.logs()}`,
      );
    };
    const driver = neo4j.driver(
      `bolt://127.0.0.1:${sidecar.proxyPort}`,
      neo4j.auth.basic(server.username, server.password),
      { logging: { level: 'error', logger: () => {} } },
    );
    const run = async (count: number, query: string) => {
      for (let i = 0; i < count; i++) await driver.executeQuery(query).catch(() => undefined);
    };
    try {
      assert.ok(await sidecar.waitForOk('/readyz'), `the sidecar never became ready:\n${sidecar.logs()}`);
      // 1 failed of 10 through the proxy: 10 %, at the warning level (5 %) and below the critical (25 %).
      await run(9, 'RETURN 1');
      await run(1, 'RETURN this is not cypher');
      await waitForTransition(`${ALERT} (warning) firing`);
      // 6 of 15: 40 %, critical too.
      await run(5, 'RETURN this is not cypher');
      await waitForTransition(`${ALERT} (critical) firing`);
      // 6 of 165: under 4 %, both resolve.
      await run(150, 'RETURN 1');
      await waitForTransition(`${ALERT} (warning) resolved`);
      await waitForTransition(`${ALERT} (critical) resolved`);
      sidecar.child.kill('SIGTERM');
      assert.equal(await sidecar.exited, 0, sidecar.logs());
    } finally {
      await driver.close();
      await sidecar.stop();
    }

    const lines = stdout.split('\n').filter((line) => line.trim() !== '');
    assert.ok(lines.length > 5, `the CLI logged only ${lines.length} lines`);
    for (const line of lines) {
      assert.deepEqual(duplicateJsonKeys(line), [], `a log line with a key twice: ${line}`);
    }

    const logged = transitions().map((line) => ({
      msg: line.msg.replace(/:.*$/, ''),
      level: line.level,
      threshold: line.threshold,
    }));
    // The critical level is left behind first as the successes come in, or both in one evaluation.
    const byMessage = (a: { msg: string }, b: { msg: string }) => a.msg.localeCompare(b.msg);
    assert.deepEqual(logged.slice(0, 2), [
      { msg: `${ALERT} (warning) firing`, level: PINO_LEVEL.warn, threshold: 0.05 },
      { msg: `${ALERT} (critical) firing`, level: PINO_LEVEL.error, threshold: 0.25 },
    ]);
    assert.deepEqual(logged.slice(2).sort(byMessage), [
      { msg: `${ALERT} (critical) resolved`, level: PINO_LEVEL.info, threshold: 0.25 },
      { msg: `${ALERT} (warning) resolved`, level: PINO_LEVEL.info, threshold: 0.05 },
    ]);
  });
});
