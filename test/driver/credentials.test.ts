/**
 * The credentials gate on its own, with a scripted login in place of Neo4j (refusing is the fault
 * under test; the real server's lockout is exercised in test/reliability/stale-password.test.ts):
 * one login at a time, none while refused, retries spaced out and doubling, a new password tried at once.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import neo4j from 'neo4j-driver';
import {
  CredentialsGate,
  type CredentialsGateOptions,
  isCredentialsRejected,
  type RejectionReason,
} from '../../src/driver/credentials.ts';
import { eventually } from '../support/eventually.ts';

const UNAUTHORIZED = 'Neo.ClientError.Security.Unauthorized';
/** Generous for a loaded machine, yet well inside the 60 s retry that would otherwise try a new password. */
const PASSWORD_FILE_NOTICED_MS = 20_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function refusal(code = UNAUTHORIZED): Error {
  return Object.assign(new Error('The client is unauthorized due to authentication failure.'), { code });
}

/**
 * A gate whose logins succeed only with `good()`, recording when each login was attempted. A login
 * takes `loginMs` of the real clock, or answers at once with 0 (for a test on mocked timers).
 */
function scriptedGate(good: () => string, overrides: Partial<CredentialsGateOptions> = {}, loginMs = 5) {
  const logins: Array<{ at: number; password: string }> = [];
  const rejected: RejectionReason[] = [];
  const started = Date.now();
  const gate = new CredentialsGate({
    username: 'neo4j',
    password: 'stale',
    retryInitialMs: 100,
    retryMaxMs: 400,
    verifyTimeoutMs: 1000,
    verify: async (auth) => {
      logins.push({ at: Date.now() - started, password: String(auth.credentials) });
      if (loginMs > 0) await sleep(loginMs);
      if (auth.credentials !== good()) throw refusal();
    },
    observer: { rejected: (reason) => rejected.push(reason) },
    ...overrides,
  });
  return { gate, logins, rejected };
}

describe('the credentials gate', () => {
  it('lets one login through for many callers and none of their work while Neo4j refuses', async () => {
    const { gate, logins, rejected } = scriptedGate(() => 'right');
    let worked = 0;
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, () =>
        gate.run(async () => {
          worked++;
        }),
      ),
    );
    assert.equal(logins.length, 1, 'five callers, one login');
    assert.equal(worked, 0, 'no work reaches Neo4j with refused credentials');
    assert.ok(results.every((result) => result.status === 'rejected' && isCredentialsRejected(result.reason)));
    assert.equal(gate.state, 'rejected');
    assert.deepEqual(rejected, ['unauthorized']);
    assert.match(
      gate.readiness().detail ?? '',
      /refused the credentials of user neo4j \(Neo\.ClientError\.Security\.Unauthorized\)/,
    );
    await assert.rejects(
      async () => gate.authTokenManager.getToken(),
      isCredentialsRejected,
      'no token for a driver either',
    );
    gate.stop();
  });

  it('retries with one login at a time, each wait twice the one before up to the maximum', async (t) => {
    // The gate's clock and timers are mocked: the retry schedule is exact, whatever the machine's load.
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const { gate, logins } = scriptedGate(() => 'right', {}, 0);
    /** Lets the login that a timer started settle (microtasks only, as the scripted login takes no time). */
    const settle = () => new Promise((resolve) => setImmediate(resolve));
    /** Callers keep asking meanwhile: they must not cause logins of their own. */
    const callersAsk = async () => {
      for (let i = 0; i < 3; i++) await gate.run(async () => {}).catch(() => {});
    };
    gate.start();
    await settle();
    const at = () => logins.map((login) => login.at);
    assert.deepEqual(at(), [0], 'the first login at start');
    // 100, 200, 400, 400: each retry exactly when due, none a millisecond early, none caused by a caller.
    for (const wait of [100, 200, 400, 400]) {
      const before = logins.length;
      await callersAsk();
      t.mock.timers.tick(wait - 1);
      await settle();
      await callersAsk();
      assert.equal(logins.length, before, `no login ${wait - 1} ms into a ${wait} ms wait: ${at()}`);
      t.mock.timers.tick(1);
      await settle();
      assert.equal(logins.length, before + 1, `one login when the ${wait} ms wait is over: ${at()}`);
    }
    assert.deepEqual(at(), [0, 100, 300, 700, 1100]);
    gate.stop();
  });

  it('reports refusals the driver meets only for the password in use', async () => {
    const { gate, rejected } = scriptedGate(() => 'stale');
    await gate.run(async () => {});
    assert.equal(gate.state, 'accepted');
    const manager = gate.authTokenManager;
    assert.equal(manager.handleSecurityException(neo4j.auth.basic('neo4j', 'older'), UNAUTHORIZED), false);
    assert.equal(gate.state, 'accepted', 'a refusal of an older password says nothing of the current one');
    manager.handleSecurityException(await manager.getToken(), 'Neo.ClientError.Security.AuthenticationRateLimit');
    assert.equal(gate.state, 'rejected');
    assert.deepEqual(rejected, ['rate_limited']);
    gate.stop();
  });

  it('tries a changed password file at once and lets work through when Neo4j accepts it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gate-'));
    const file = join(dir, 'password');
    await writeFile(file, 'stale\n');
    let good = 'right';
    const states: string[] = [];
    const { gate, logins } = scriptedGate(() => good, {
      passwordFile: file,
      pollIntervalMs: 20,
      retryInitialMs: 60_000,
      retryMaxMs: 60_000,
    });
    gate.onChange((state) => states.push(state));
    try {
      gate.start();
      await eventually(() => assert.equal(gate.state, 'rejected'), PASSWORD_FILE_NOTICED_MS);
      await writeFile(file, 'right\n');
      // Polled every 20 ms; far inside the minute before a retry could try the file's password instead.
      await eventually(() => assert.equal(gate.state, 'accepted'), PASSWORD_FILE_NOTICED_MS);
      assert.deepEqual(
        logins.map((login) => login.password),
        ['stale', 'right'],
        'the new password at once, long before the minute-long retry',
      );
      assert.equal(await gate.run(async () => 'done'), 'done');
      assert.deepEqual(states, ['rejected', 'unverified', 'accepted']);
      // Work refused by Neo4j turns the gate back to refusing, at once.
      good = 'other';
      await assert.rejects(gate.run(() => Promise.reject(refusal())));
      assert.equal(gate.state, 'rejected');
    } finally {
      gate.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stays unverified while Neo4j is unreachable, passing on why', async () => {
    const gate = new CredentialsGate({
      username: 'neo4j',
      password: 'pw',
      retryInitialMs: 100,
      retryMaxMs: 100,
      verifyTimeoutMs: 50,
      verify: () => new Promise(() => {}),
    });
    await assert.rejects(
      gate.run(async () => {}),
      /did not answer a login within 50 ms/,
    );
    assert.equal(gate.state, 'unverified');
    assert.match(gate.readiness().detail ?? '', /not verified/);
  });
});
