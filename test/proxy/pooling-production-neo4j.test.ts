/**
 * The pooling proxy (session and transaction mode) against a Neo4j 5.26 of its own with the production login defaults (at most 3
 * failed logins, then the user is locked for 5 s; the shared test server turns that off): a loop of
 * 1,000 per-task drivers through the sidecar as shipped, which Neo4j must see as a few connections
 * (its own listing and the census agree); the security promises (Neo4j's own answer to every wrong
 * password, one failed login per wrong password and none of the sidecar's own, the right user at every
 * checkout, a changed password refused at once or within the cache window, never two clients on one
 * upstream); and Neo4j restarted under load.
 *
 * Neo4j Community writes no login events to security.log (the file stays empty), so the failed logins
 * the server counted are read from the lockout itself: 2 wrong passwords must leave the user able to
 * log in, 3 must lock it, exactly as when the client talks to Neo4j directly.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import neo4j, { type AuthToken, type Driver } from 'neo4j-driver';
import { type LocalNeo4j, startLocalNeo4j } from '../../scripts/neo4j/local-neo4j.ts';
import { isBoltProxyComponent, type PoolingMode } from '../../src/proxy/index.ts';
import type { RunningSidecar } from '../../src/server/index.ts';
import { parseExposition } from '../support/prometheus-text.ts';
import { startTestSidecar } from '../support/sidecar.ts';
import { ownTransaction, perTask, quiet } from './pooling-support.ts';
import { eventually, startTestProxy, type TestProxy } from './support.ts';

/** Neo4j's own defaults, spelt out because the test harness sets the attempts to 0 (no lockout). */
const PRODUCTION_LOGIN_CONFIG = {
  'dbms.security.auth_max_failed_attempts': '3',
  'dbms.security.auth_lock_time': '5s',
};
const UNAUTHORIZED = 'Neo.ClientError.Security.Unauthorized';
const MODES: readonly PoolingMode[] = ['session', 'transaction'];
const RATE_LIMITED = 'Neo.ClientError.Security.AuthenticationRateLimit';

let server: LocalNeo4j;
let admin: Driver;

before(async () => {
  server = await startLocalNeo4j({ name: 'pooling-production', extraConfig: PRODUCTION_LOGIN_CONFIG });
  admin = neo4j.driver(server.uri, neo4j.auth.basic(server.username, server.password), {
    ...quiet,
    maxConnectionPoolSize: 1,
  });
});
after(async () => {
  await admin?.close();
  await server?.destroy();
});

interface User {
  readonly user: string;
  readonly password: string;
}

/** A user of its own per test: the lockout a test provokes must not reach the next one. */
async function newUser(prefix: string): Promise<User> {
  const user = { user: `${prefix}_${randomUUID().slice(0, 8)}`, password: `pw-${randomUUID()}` };
  await admin.executeQuery(
    `CREATE USER ${user.user} SET PLAINTEXT PASSWORD $password CHANGE NOT REQUIRED`,
    { password: user.password },
    { database: 'system' },
  );
  return user;
}

const basic = (user: string, password: string): AuthToken => neo4j.auth.basic(user, password);

async function currentUser(driver: Driver): Promise<string> {
  const { records } = await driver.executeQuery('SHOW CURRENT USER YIELD user', {}, { database: 'system' });
  return String(records[0]?.get('user'));
}

interface LoginError {
  code?: string;
  message?: string;
}

/** Logs in with one per-task driver and returns the error, or null when the login worked. */
async function tryLogin(uri: string, token: AuthToken): Promise<LoginError | null> {
  return perTask(uri, token, async (driver) => {
    try {
      await driver.getServerInfo();
      return null;
    } catch (error) {
      return error as LoginError;
    }
  });
}

async function expectRefused(uri: string, user: string, password: string, code = UNAUTHORIZED): Promise<LoginError> {
  const error = await tryLogin(uri, basic(user, password));
  assert.ok(error, `${user} logged in through ${uri} with a wrong password`);
  assert.equal(error.code, code, JSON.stringify(error));
  return error;
}

describe('1,000 per-task drivers through the sidecar as shipped (session pooling by default)', () => {
  const maxUpstreams = 8;
  const tasks = 1000;
  const concurrency = 16;
  let sidecar: RunningSidecar;

  before(async () => {
    sidecar = await startTestSidecar({
      neo4j: server,
      env: {
        SIDECAR__PROXY__POOLING__MAX_UPSTREAMS: String(maxUpstreams),
        // A census every 2 s, so the test need not wait 15 s for the server's view.
        SIDECAR__PROBES__SCHEDULE: '*/2 * * * * *',
        SIDECAR__PROBES__TIMEOUT_MS: '600',
        SIDECAR__PROBES__JITTER_MS: '0',
      },
    });
  });
  after(async () => {
    await sidecar?.stop();
  });

  async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${sidecar.httpAddress.port}/metrics`)).text();
    return parseExposition(text)
      .samples.filter(
        (sample) =>
          sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
      )
      .reduce((sum, sample) => sum + sample.value, 0);
  }

  /** Connections Neo4j lists for the per-task drivers' agent (the pool opens upstreams with their HELLO). */
  async function serverConnections(userAgent: string): Promise<number> {
    const { records } = await admin.executeQuery(
      'CALL dbms.listConnections() YIELD userAgent WHERE userAgent = $userAgent RETURN count(*) AS n',
      { userAgent },
    );
    return records[0]?.get('n').toNumber();
  }

  test('Neo4j sees at most the pool size, the census agrees, every result is right', {
    timeout: 600_000,
  }, async (t) => {
    const proxy = sidecar.components.find(isBoltProxyComponent)?.proxy;
    assert.ok(proxy, 'the sidecar runs its proxy');
    const uri = `bolt://${proxy.address}`;
    const userAgent = `per-task-loop/${randomUUID().slice(0, 8)}`;
    const openedBefore = await metric('neo4j_census_connections_opened_total');

    let most = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        most = Math.max(most, await serverConnections(userAgent));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();

    const connectionIds = new Set<string>();
    const started = Date.now();
    let next = 0;
    let correct = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let task = next++; task < tasks; task = next++) {
          const result = await perTask(
            uri,
            basic(server.username, server.password),
            async (driver) => {
              const { records } = await driver.executeQuery('RETURN $task AS task', { task });
              // Every tenth task also asks Neo4j which connection it is on.
              const id = task % 10 === 0 ? (await ownTransaction(driver)).connectionId : undefined;
              return { value: neo4j.integer.toNumber(records[0]?.get('task')), id };
            },
            { userAgent },
          );
          if (result.value === task) correct++;
          if (result.id) connectionIds.add(result.id);
        }
      }),
    );
    sampling = false;
    await sampler;

    assert.equal(correct, tasks);
    const closedDuringLoop = await metric('neo4j_proxy_pool_upstreams_closed_total');
    t.diagnostic(
      `${tasks} tasks in ${Date.now() - started} ms on ${connectionIds.size} Neo4j connections ` +
        `(${closedDuringLoop} pooled upstreams closed on the way), at most ${most} at once`,
    );
    // An upstream the pool closes is replaced, so only the count at any moment is bounded.
    assert.ok(connectionIds.size <= maxUpstreams + closedDuringLoop, `tasks ran on ${connectionIds.size} connections`);
    assert.ok(most <= maxUpstreams, `Neo4j listed ${most} connections of the per-task drivers at once`);
    const listed = await serverConnections(userAgent);
    assert.ok(listed >= 1 && listed <= maxUpstreams, `${listed} pooled connections stay open`);
    // The census lists the same connections: the pooled ones carry the tasks' agent, labelled "other".
    await eventually(async () => {
      assert.equal(await metric('neo4j_census_connections', { user_agent_family: 'other' }), listed);
    }, 20_000);
    // Neo4j's own count of connections opened (from its connection ids, read by the census) agrees
    // with the pool's: a few for 1,000 tasks.
    const opened = (await metric('neo4j_census_connections_opened_total')) - openedBefore;
    const proxyOpened = await metric('neo4j_proxy_pool_checkouts_total', { result: 'opened' });
    assert.ok(
      opened <= maxUpstreams + closedDuringLoop,
      `the census counted ${opened} connections opened for ${tasks} tasks (the pool opened ${proxyOpened})`,
    );
    assert.ok(proxyOpened <= maxUpstreams + closedDuringLoop, `the pool opened ${proxyOpened} upstreams`);
    const lent =
      (await metric('neo4j_proxy_pool_checkouts_total', { result: 'reauthenticated' })) +
      (await metric('neo4j_proxy_pool_checkouts_total', { result: 'reused' })) +
      proxyOpened;
    assert.ok(lent >= tasks, `${lent} checkouts for ${tasks} tasks`);
  });
});

/** Authentication with every login verified (the default) and with the login cache on. */
for (const [mode, authCacheSeconds] of MODES.flatMap((mode) => [0, 3].map((seconds) => [mode, seconds] as const))) {
  describe(`security, ${mode} pooling, authCacheSeconds ${authCacheSeconds}`, { timeout: 180_000 }, () => {
    let proxy: TestProxy;
    before(async () => {
      proxy = await startTestProxy(server.uri, { pooling: { mode, maxUpstreams: 2, authCacheSeconds } });
    });
    after(async () => {
      await proxy?.stop();
    });

    test("a wrong password gets Neo4j's own refusal every time, also right after a correct login", async () => {
      const user = await newUser('wrongpw');
      const direct = await expectRefused(server.uri, user.user, 'not-the-password');
      // A correct login in between resets Neo4j's count of failures, as it does direct.
      assert.equal(await tryLogin(server.uri, basic(user.user, user.password)), null);
      for (let round = 0; round < 4; round++) {
        const seen = await perTask(proxy.boltUri, basic(user.user, user.password), currentUser);
        assert.equal(seen, user.user);
        const refused = await expectRefused(proxy.boltUri, user.user, 'not-the-password');
        assert.equal(refused.message, direct.message);
      }
    });

    test('a wrong password costs exactly one failed login on Neo4j, and the sidecar adds none', async () => {
      const user = await newUser('lockout');
      // Two failures through the proxy: Neo4j counted at most two, so the user is not locked.
      for (let attempt = 0; attempt < 2; attempt++) await expectRefused(proxy.boltUri, user.user, 'wrong');
      assert.equal(await tryLogin(server.uri, basic(user.user, user.password)), null, 'two failures locked the user');
      // Three failures through the proxy: Neo4j counted every one, so it locks the user as it would direct.
      for (let attempt = 0; attempt < 3; attempt++) await expectRefused(proxy.boltUri, user.user, 'wrong');
      const locked = await tryLogin(server.uri, basic(user.user, user.password));
      assert.equal(locked?.code, RATE_LIMITED, `the third failure did not reach Neo4j: ${JSON.stringify(locked)}`);
      // The proxy gives the locked user Neo4j's own answer too, not a login of its own.
      await expectRefused(proxy.boltUri, user.user, user.password, RATE_LIMITED);
    });

    test('users interleaved on the pool: SHOW CURRENT USER is right at every checkout', async () => {
      const users = [await newUser('mix_a'), await newUser('mix_b'), await newUser('mix_c')];
      const mismatches: string[] = [];
      await Promise.all(
        Array.from({ length: 48 }, async (_, task) => {
          const user = users[task % users.length] as User;
          const seen = await perTask(proxy.boltUri, basic(user.user, user.password), currentUser);
          if (seen !== user.user) mismatches.push(`task ${task}: ${user.user} saw ${seen}`);
        }),
      );
      assert.deepEqual(mismatches, []);
    });

    test('a password changed while its upstream is pooled: the old one is refused in time', async (t) => {
      const user = await newUser('rotate');
      const single = await startTestProxy(server.uri, {
        pooling: { mode, maxUpstreams: 1, authCacheSeconds },
      });
      try {
        for (let task = 0; task < 3; task++) {
          assert.equal(await perTask(single.boltUri, basic(user.user, user.password), currentUser), user.user);
        }
        const newPassword = `${user.password}-rotated`;
        await perTask(single.boltUri, basic(user.user, user.password), (driver) =>
          driver.executeQuery(
            'ALTER CURRENT USER SET PASSWORD FROM $old TO $new',
            { old: user.password, new: newPassword },
            { database: 'system' },
          ),
        );
        const changedAt = Date.now();
        if (authCacheSeconds === 0) {
          await expectRefused(single.boltUri, user.user, user.password);
        } else {
          // Documented: a login Neo4j accepted within authCacheSeconds may be answered by the proxy.
          const early = await tryLogin(single.boltUri, basic(user.user, user.password));
          t.diagnostic(`old password right after the change: ${early ? early.code : 'accepted from the cache'}`);
          const windowEnds = changedAt + authCacheSeconds * 1000 + 250;
          await new Promise((resolve) => setTimeout(resolve, Math.max(0, windowEnds - Date.now())));
          await expectRefused(single.boltUri, user.user, user.password);
        }
        assert.equal(await perTask(single.boltUri, basic(user.user, newPassword), currentUser), user.user);
        // No login of the sidecar's own with the old password: one failure so far, the user is not locked.
        assert.equal(await tryLogin(server.uri, basic(user.user, newPassword)), null);
      } finally {
        await single.stop();
      }
    });
  });
}

for (const mode of MODES)
  describe(`never two clients on one upstream, ${mode} pooling`, () => {
    test('64 concurrent clients, 5 transactions each, 8 upstreams', { timeout: 600_000 }, async (t) => {
      const maxUpstreams = 8;
      // In session mode 56 clients queue for the 8 upstreams while each holds one for 5 transactions:
      // give the queue time on a busy machine, since a timed-out client would end the run early.
      const proxy = await startTestProxy(server.uri, {
        pooling: { mode, maxUpstreams, acquireTimeoutMs: 240_000 },
      });
      try {
        interface Span {
          client: number;
          seq: number;
          connectionId: string;
          start: number;
          end: number;
        }
        const spans: Span[] = [];
        const problems: string[] = [];
        await Promise.all(
          Array.from({ length: 64 }, (_, client) =>
            perTask(
              proxy.boltUri,
              basic(server.username, server.password),
              async (driver) => {
                const session = driver.session();
                try {
                  for (let seq = 0; seq < 5; seq++) {
                    await session.executeWrite(async (tx) => {
                      const first = await ownTransaction(tx);
                      const clock = await tx.run(
                        'RETURN $client AS client, $seq AS seq, datetime.realtime().epochMillis AS now',
                        { client, seq },
                      );
                      const start = neo4j.integer.toNumber(clock.records[0]?.get('now'));
                      if (neo4j.integer.toNumber(clock.records[0]?.get('client')) !== client)
                        problems.push(`client ${client}: foreign row`);
                      const last = await ownTransaction(tx);
                      const end = (await tx.run('RETURN datetime.realtime().epochMillis AS now')).records[0]
                        ?.get('now')
                        .toNumber();
                      if (first.connectionId !== last.connectionId || first.transactionId !== last.transactionId) {
                        problems.push(
                          `client ${client} tx ${seq}: moved from ${JSON.stringify(first)} to ${JSON.stringify(last)}`,
                        );
                      }
                      spans.push({ client, seq, connectionId: first.connectionId, start, end });
                    });
                  }
                } finally {
                  await session.close();
                }
              },
              // The last of 64 clients waits for 7 rounds of 8: longer than the driver's default 60 s on a busy machine.
              { connectionAcquisitionTimeout: 600_000 },
            ),
          ),
        );
        assert.deepEqual(problems, []);
        assert.equal(spans.length, 320);
        const byConnection = new Map<string, Span[]>();
        for (const span of spans)
          byConnection.set(span.connectionId, [...(byConnection.get(span.connectionId) ?? []), span]);
        // An upstream the pool closes is replaced by a new connection: only the count at once is bounded.
        const closed = await proxy.metric('neo4j_proxy_pool_upstreams_closed_total');
        t.diagnostic(`${byConnection.size} Neo4j connections served 64 clients, ${closed} pooled upstreams closed`);
        assert.ok(
          byConnection.size <= maxUpstreams + closed,
          `${byConnection.size} Neo4j connections for ${maxUpstreams}`,
        );
        // An upstream is lent for a client's whole connection (session) or one transaction (transaction):
        // on each upstream the loans, first to last query, follow one another without overlapping.
        for (const [connectionId, onIt] of byConnection) {
          const loans = new Map<string, { start: number; end: number }>();
          for (const span of onIt) {
            const loan = mode === 'session' ? `client ${span.client}` : `client ${span.client} tx ${span.seq}`;
            const known = loans.get(loan);
            loans.set(loan, {
              start: Math.min(known?.start ?? span.start, span.start),
              end: Math.max(known?.end ?? span.end, span.end),
            });
          }
          const ordered = [...loans.entries()].sort((a, b) => a[1].start - b[1].start);
          for (let i = 1; i < ordered.length; i++) {
            const [previous, previousSpan] = ordered[i - 1] as [string, { end: number }];
            const [current, currentSpan] = ordered[i] as [string, { start: number }];
            assert.ok(
              currentSpan.start >= previousSpan.end,
              `${connectionId} served ${current} while ${previous} still had it`,
            );
          }
        }
        for (let client = 0; mode === 'session' && client < 64; client++) {
          const used = new Set(spans.filter((span) => span.client === client).map((span) => span.connectionId));
          assert.equal(used.size, 1, `client ${client} moved between upstreams in session mode: ${[...used]}`);
        }
      } finally {
        await proxy.stop();
      }
    });
  });

for (const mode of MODES)
  describe(`Neo4j restarted under load, ${mode} pooling`, () => {
    test('clients get retryable errors and recover without restarting the proxy', { timeout: 300_000 }, async () => {
      const proxy = await startTestProxy(server.uri, { pooling: { mode, maxUpstreams: 4 } });
      const token = basic(server.username, server.password);
      const errors: { code?: string; retryable: boolean; message?: string }[] = [];
      let succeeded = 0;
      let running = true;
      try {
        const load = Promise.all(
          Array.from({ length: 4 }, async () => {
            while (running) {
              try {
                await perTask(
                  proxy.boltUri,
                  token,
                  async (driver) => {
                    // One auto-commit query, no driver retries: every failure is seen here.
                    const session = driver.session();
                    try {
                      await session.run('RETURN 1');
                    } finally {
                      await session.close();
                    }
                  },
                  { connectionTimeout: 2000 },
                );
                succeeded++;
              } catch (error) {
                const failure = error as { code?: string; message?: string };
                errors.push({ code: failure.code, message: failure.message, retryable: neo4j.isRetryableError(error) });
                await new Promise((resolve) => setTimeout(resolve, 100));
              }
            }
          }),
        );
        await eventually(() => assert.ok(succeeded >= 20), 30_000);
        await server.stop();
        await eventually(() => assert.ok(errors.length >= 4, 'the outage is seen by the clients'), 30_000);
        await server.start();
        const afterRestart = succeeded;
        await eventually(() => assert.ok(succeeded >= afterRestart + 20, 'clients recover'), 60_000);
        running = false;
        await load;
        const notRetryable = errors.filter((error) => !error.retryable);
        assert.deepEqual(notRetryable, [], 'every error during the outage is one a driver retries');
        // A long-lived driver through the same proxy works too, with its own pool after the restart.
        const worker = neo4j.driver(proxy.boltUri, token, quiet);
        try {
          const { records } = await worker.executeQuery('RETURN 42 AS answer');
          assert.equal(records[0]?.get('answer').toNumber(), 42);
        } finally {
          await worker.close();
        }
      } finally {
        running = false;
        await proxy.stop();
      }
    });
  });
