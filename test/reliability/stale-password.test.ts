/**
 * A sidecar with a stale password must not lock its user out for everyone. Neo4j with its default
 * lockout (3 failed logins lock the user for 5 s, the right password included), the real CLI with its
 * default configuration reading the password from a Secret-like mount that holds a rotated-away
 * password, and beside it a worker logging in with the right password several times a second (a new
 * driver per task). The worker must never be refused; the sidecar must say plainly that its
 * credentials are refused (readiness reason, metrics, one log line) and log in rarely. When the
 * Secret is updated in place the way the kubelet does it (a new timestamped folder, the `..data`
 * symlink renamed over), the sidecar must pick the password up and become ready without a restart.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import neo4j from 'neo4j-driver';
import { type LocalNeo4j, startLocalNeo4j } from '../../scripts/neo4j/local-neo4j.ts';
import { pollHttp, type SidecarCli, spawnSidecarCli } from '../support/cli.ts';
import { eventually } from '../support/eventually.ts';
import { parseExposition } from '../support/prometheus-text.ts';

/**
 * Long enough for several of the sidecar's probe runs (every 15 s) and readiness checks (every 2 s); the
 * window then runs on until the events it is there for have happened (see REFUSALS_IN_WINDOW).
 */
const WINDOW_MS = 45_000;
/** The first login and the retries after 10 s and 20 s more (doubling): 30 s into the window. */
const REFUSALS_IN_WINDOW = 3;
const WORKER_LOGINS_IN_WINDOW = 40;
const WORKER_PAUSE_MS = 250;
const STALE_PASSWORD = 'rotated-away-password';

let server: LocalNeo4j;
let sidecar: SidecarCli;
let secretDir: string;
let stopWorker = false;

/** A mounted Secret as the kubelet lays it out: password -> ..data/password, ..data -> ..<version>. */
async function writeSecret(version: number, password: string): Promise<void> {
  const versionDir = `..v${version}`;
  await mkdir(join(secretDir, versionDir));
  await writeFile(join(secretDir, versionDir, 'password'), `${password}\n`);
  await symlink(versionDir, join(secretDir, '..data_tmp'));
  await rename(join(secretDir, '..data_tmp'), join(secretDir, '..data'));
}

before(async () => {
  server = await startLocalNeo4j({
    name: 'stale-password',
    // Neo4j's own default, spelt out because the test servers otherwise turn the lockout off.
    extraConfig: { 'dbms.security.auth_max_failed_attempts': '3' },
  });
  secretDir = await mkdtemp(join(tmpdir(), 'sidecar-secret-'));
  await writeSecret(1, STALE_PASSWORD);
  await symlink(join('..data', 'password'), join(secretDir, 'password'));
});

after(async () => {
  stopWorker = true;
  await sidecar?.stop();
  await server?.destroy();
  if (secretDir) await rm(secretDir, { recursive: true, force: true });
});

interface WorkerTally {
  logins: number;
  refused: string[];
}

/** Logs in with the right password on a new driver, again and again, until `stop` says so. */
async function worker(tally: WorkerTally, stop: () => boolean): Promise<void> {
  while (!stop()) {
    const driver = neo4j.driver(server.uri, neo4j.auth.basic(server.username, server.password), {
      maxConnectionPoolSize: 1,
      logging: { level: 'error', logger: () => {} },
    });
    try {
      await driver.getServerInfo();
      tally.logins++;
    } catch (error) {
      tally.refused.push(`${(error as { code?: string }).code}: ${(error as Error).message}`);
    } finally {
      await driver.close();
    }
    await new Promise((resolve) => setTimeout(resolve, WORKER_PAUSE_MS));
  }
}

async function metric(name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const text = await (await fetch(`${sidecar.httpUrl}/metrics`)).text();
  return parseExposition(text).samples.find(
    (sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  )?.value;
}

async function credentialsStatus(): Promise<{ state: string; since: string; nextAttemptAt?: string }> {
  const status = (await (await fetch(`${sidecar.httpUrl}/status`)).json()) as {
    credentials: { state: string; since: string; nextAttemptAt?: string };
  };
  return status.credentials;
}

describe('a sidecar whose password was rotated away', () => {
  it('never locks out a worker with the right password, says why it is not ready, and recovers when the Secret is updated', async () => {
    const tally: WorkerTally = { logins: 0, refused: [] };
    const working = worker(tally, () => stopWorker);
    sidecar = await spawnSidecarCli(['run'], {
      NEO4J_URI: server.uri,
      NEO4J_PASSWORD_FILE: join(secretDir, 'password'),
    });
    // The alert's measure starts at the first refusal and must stay there through the retries.
    const firstRefusedSince = await eventually(async () => {
      assert.equal(await metric('neo4j_sidecar_credentials_rejected'), 1);
      const since = await metric('neo4j_sidecar_credentials_rejected_since_timestamp_seconds');
      assert.ok(since !== undefined && since > 0, `refused since ${since}`);
      return since;
    }, 60_000);
    await new Promise((resolve) => setTimeout(resolve, WINDOW_MS));
    // However slow the machine, the window holds the retries and the worker's logins it is about.
    await eventually(async () => {
      const refusals = await metric('neo4j_sidecar_credentials_rejections_total', { reason: 'unauthorized' });
      assert.ok((refusals ?? 0) >= REFUSALS_IN_WINDOW, `${refusals} refusals so far`);
      assert.ok(tally.logins >= WORKER_LOGINS_IN_WINDOW, `the worker logged in ${tally.logins} times so far`);
    }, 90_000);
    const refusedMessage = () =>
      `the worker was refused ${tally.refused.length} of ${tally.logins + tally.refused.length} logins: ${tally.refused.slice(0, 3).join('; ')}`;
    assert.deepEqual(tally.refused, [], refusedMessage());

    const notReady = await fetch(`${sidecar.httpUrl}/readyz`);
    assert.equal(notReady.status, 503);
    const body = (await notReady.json()) as { reason?: string };
    assert.match(body.reason ?? '', /neo4j: Neo4j refused the credentials of user neo4j/);
    assert.match(body.reason ?? '', /Neo\.ClientError\.Security\.Unauthorized/);
    assert.equal(await metric('neo4j_sidecar_credentials_rejected'), 1);
    // The alert's measure: refused since the sidecar's first refused login, not its latest retry.
    assert.equal(
      await metric('neo4j_sidecar_credentials_rejected_since_timestamp_seconds'),
      firstRefusedSince,
      'refused since the first refusal',
    );
    // Refusals: the first login, then retries after 10 s, 20 s and 40 s more (doubling); the window ends
    // at most 135 s after the first, before a fifth (at 150 s) could come.
    const rejections = await metric('neo4j_sidecar_credentials_rejections_total', { reason: 'unauthorized' });
    assert.ok(rejections !== undefined && rejections >= 1 && rejections <= 4, `rejections: ${rejections}`);
    const refusalLines = sidecar
      .logs()
      .split('\n')
      .filter((line) => line.includes("refused the sidecar's credentials"));
    assert.equal(refusalLines.length, 1, 'one log line when the credentials are refused, not one per attempt');
    assert.ok(!sidecar.logs().includes(STALE_PASSWORD), 'the password is never logged');

    // The Secret is updated in place; the sidecar tries the new password at once: Neo4j accepts it
    // before the next retry was due (by the sidecar's own clock, so the test's polling does not count).
    const refused = await credentialsStatus();
    assert.equal(refused.state, 'rejected');
    const retryDueAt = Date.parse(refused.nextAttemptAt ?? '');
    assert.ok(Number.isFinite(retryDueAt), `the next retry is scheduled: ${JSON.stringify(refused)}`);
    await writeSecret(2, server.password);
    const ready = await pollHttp(`${sidecar.httpUrl}/readyz`, {
      accept: (response) => response.ok,
      timeoutMs: 90_000,
      intervalMs: 100,
      process: sidecar.child,
    });
    assert.ok(ready, `not ready within 90 s of the Secret update:\n${sidecar.logs().slice(-3000)}`);
    const accepted = await credentialsStatus();
    assert.equal(accepted.state, 'accepted');
    assert.ok(
      Date.parse(accepted.since) < retryDueAt,
      `accepted at ${accepted.since}, not before the retry due at ${refused.nextAttemptAt}`,
    );
    assert.equal(await metric('neo4j_sidecar_credentials_rejected'), 0);
    assert.equal(await metric('neo4j_sidecar_credentials_rejected_since_timestamp_seconds'), 0);
    assert.match(sidecar.logs(), /Neo4j accepts the credentials again/);
    stopWorker = true;
    await working;

    assert.deepEqual(tally.refused, [], refusedMessage());
    assert.ok(tally.logins >= WORKER_LOGINS_IN_WINDOW, `the worker logged in ${tally.logins} times`);
    assert.equal(sidecar.child.exitCode, null, 'no restart');
  });
});
