/**
 * proxy.pooling.minIdle pre-warming against the real Neo4j 5.26 and the real JS driver: a Bolt 5.1+
 * key used by a client is topped up to minIdle idle upstreams that have done HELLO and no login, Neo4j
 * lists them without a user, and a burst of new clients is served on them with one LOGON each, verified
 * by Neo4j (a wrong password is Neo4j's own refusal, costing one LOGON). Nothing is pre-warmed with the
 * default minIdle 0, a key left unused for idleTimeoutMs is no longer topped up, Neo4j's close of a
 * connection left without a login (measured here) never reaches a pre-warmed upstream, a stopped Neo4j
 * gets one attempt a second rather than a loop, and the real CLI pre-warms with the env variable set.
 * A relay between proxy and Neo4j counts the connections and the requests on each.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import neo4j, { type Driver } from 'neo4j-driver';
import { type LocalNeo4j, startLocalNeo4j } from '../../scripts/neo4j/local-neo4j.ts';
import { BoltSignature } from '../../src/proxy/bolt/index.ts';
import { SWEEP_INTERVAL_MS, UNAUTHENTICATED_MAX_AGE_MS } from '../../src/proxy/pool/pool.ts';
import { type BoltRelay, type RelayedConnection, sessions, startBoltRelay } from '../support/bolt-relay.ts';
import { spawnSidecarCli } from '../support/cli.ts';
import { closeSharedNeo4j, openSharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { parseExposition } from '../support/prometheus-text.ts';
import { connectBolt58, hello } from '../support/raw-bolt.ts';
import { ownTransaction, perTask, quiet } from './pooling-support.ts';
import { eventually, hostPort, startTestProxy, type TestProxy } from './support.ts';

let server: TestNeo4j;
let direct: Driver;

before(async () => {
  ({ server, driver: direct } = await openSharedNeo4j(quiet));
});
after(() => closeSharedNeo4j(direct));

function auth(password = server.password) {
  return neo4j.auth.basic(server.username, password);
}

function metric(proxy: TestProxy, name: string, labels: Record<string, string> = {}): Promise<number> {
  return proxy.metric(`neo4j_proxy_pool_${name}`, labels);
}

/** Upstreams opened with HELLO and never sent a login. */
function helloOnly(relay: BoltRelay): RelayedConnection[] {
  return sessions(relay).filter((connection) => !connection.loggedIn);
}

/** Neo4j's own listing of the connections with this user agent, and the user each is logged in as ('' for none). */
async function listed(observer: Driver, userAgent: string): Promise<{ id: string; user: string }[]> {
  const { records } = await observer.executeQuery(
    'CALL dbms.listConnections() YIELD connectionId, userAgent, username WHERE userAgent = $userAgent ' +
      'RETURN connectionId, username',
    { userAgent },
  );
  return records.map((record) => ({ id: String(record.get('connectionId')), user: record.get('username') ?? '' }));
}

/** The code of the error a login with `password` gets through `uri`; undefined when it is accepted. */
async function loginError(uri: string, password: string): Promise<string | undefined> {
  try {
    await perTask(uri, auth(password), (driver) => driver.executeQuery('RETURN 1'));
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

describe('minIdle pre-warms Bolt 5.1+ upstreams', () => {
  // Each test has its own relay, so its counts are its own.
  let relay: BoltRelay;
  beforeEach(async () => {
    relay = await startBoltRelay(server.uri);
  });
  afterEach(async () => {
    await relay?.close();
  });

  it('after one client, the key has minIdle idle upstreams more; a burst is served on them, every login verified', async (t) => {
    const proxy = await startTestProxy(relay.uri, { pooling: { mode: 'session', minIdle: 3 } });
    const userAgent = `prewarm-${randomUUID()}`;
    try {
      const first = await perTask(proxy.boltUri, auth(), (driver) => ownTransaction(driver), { userAgent });
      // The client's upstream was lent while the three were opened, and came back logged in.
      await eventually(async () => assert.equal(await metric(proxy, 'upstreams', { state: 'idle' }), 4));
      assert.equal(helloOnly(relay).length, 3);
      for (const upstream of helloOnly(relay)) assert.deepEqual(upstream.requests, [BoltSignature.HELLO]);
      const seen = await listed(direct, userAgent);
      t.diagnostic(`Neo4j lists: ${JSON.stringify(seen)}`);
      assert.equal(seen.length, 4, JSON.stringify(seen));
      const noUser = seen.filter((connection) => connection.user === '');
      assert.equal(noUser.length, 3, `Neo4j lists the pre-warmed ones with no user: ${JSON.stringify(seen)}`);
      assert.ok(!noUser.some((connection) => connection.id === first.connectionId));

      const opened = await metric(proxy, 'checkouts_total', { result: 'opened' });
      const reauthenticated = await metric(proxy, 'checkouts_total', { result: 'reauthenticated' });
      const verified = await metric(proxy, 'logins_total', { outcome: 'verified' });
      const ids = await Promise.all(
        Array.from({ length: 3 }, () =>
          perTask(
            proxy.boltUri,
            auth(),
            (driver) =>
              driver.session().executeRead(async (tx) => {
                const own = await ownTransaction(tx);
                await delay(300);
                return own.connectionId;
              }),
            { userAgent },
          ),
        ),
      );
      assert.equal(new Set(ids).size, 3, 'three clients at once, on three upstreams');
      assert.ok(!ids.includes(first.connectionId), 'the logged-in upstream was left for later');
      assert.equal(await metric(proxy, 'checkouts_total', { result: 'opened' }), opened, 'no client opened one');
      assert.equal(await metric(proxy, 'checkouts_total', { result: 'reauthenticated' }), reauthenticated + 3);
      assert.equal(await metric(proxy, 'logins_total', { outcome: 'verified' }), verified + 3);
      // Each login went to Neo4j as LOGON alone: none of them landed on the logged-in upstream (LOGOFF first).
      assert.ok(sessions(relay).every((upstream) => !upstream.requests.includes(BoltSignature.LOGOFF)));
    } finally {
      await proxy.stop();
    }
  });

  it('a wrong password on a pre-warmed upstream gets Neo4j’s own refusal, for one LOGON', async () => {
    const proxy = await startTestProxy(relay.uri, { pooling: { mode: 'session', minIdle: 2 } });
    const userAgent = `prewarm-${randomUUID()}`;
    const logons = () =>
      sessions(relay).reduce(
        (sum, upstream) => sum + upstream.requests.filter((signature) => signature === BoltSignature.LOGON).length,
        0,
      );
    try {
      await perTask(proxy.boltUri, auth(), (driver) => driver.executeQuery('RETURN 1'), { userAgent });
      await eventually(async () => assert.equal(await metric(proxy, 'upstreams', { state: 'idle' }), 3));
      const logonsBefore = logons();
      const prewarmed = new Set(helloOnly(relay));
      const code = await loginError(proxy.boltUri, 'not-the-password');
      assert.equal(code, 'Neo.ClientError.Security.Unauthorized');
      assert.equal(code, await loginError(server.uri, 'not-the-password'), 'the same answer as direct');
      assert.equal(logons(), logonsBefore + 1, 'exactly one LOGON reached Neo4j');
      const tried = sessions(relay).filter((upstream) => prewarmed.has(upstream) && upstream.loggedIn);
      assert.equal(tried.length, 1, 'on a pre-warmed upstream');
      assert.deepEqual(tried[0]?.requests, [BoltSignature.HELLO, BoltSignature.LOGON]);
      assert.equal(await metric(proxy, 'logins_total', { outcome: 'refused' }), 1);
      assert.equal(await metric(proxy, 'upstreams_closed_total', { reason: 'login_refused' }), 1);
      // The right password still works, on the next one.
      const { records } = await perTask(proxy.boltUri, auth(), (driver) => driver.executeQuery('RETURN 7 AS seven'));
      assert.equal(records[0]?.get('seven').toNumber(), 7);
      assert.equal(await metric(proxy, 'checkouts_total', { result: 'opened' }), 1, 'only the first client opened one');
    } finally {
      await proxy.stop();
    }
  });

  it('with the login cache on, a pre-warmed upstream still gets the login verified: it has none to compare', async () => {
    const proxy = await startTestProxy(relay.uri, { pooling: { mode: 'session', minIdle: 2, authCacheSeconds: 60 } });
    const holder = neo4j.driver(proxy.boltUri, auth(), { ...quiet, maxConnectionPoolSize: 1 });
    const session = holder.session();
    try {
      // The holder keeps the one logged-in upstream busy, so the next client finds only pre-warmed ones.
      const tx = await session.beginTransaction();
      await tx.run('RETURN 1');
      await eventually(async () => assert.equal(await metric(proxy, 'upstreams', { state: 'idle' }), 2));
      const cached = await metric(proxy, 'logins_total', { outcome: 'cached' });
      const verified = await metric(proxy, 'logins_total', { outcome: 'verified' });
      const { records } = await perTask(proxy.boltUri, auth(), (driver) => driver.executeQuery('RETURN 2 AS two'));
      assert.equal(records[0]?.get('two').toNumber(), 2);
      assert.equal(await metric(proxy, 'logins_total', { outcome: 'cached' }), cached);
      assert.equal(await metric(proxy, 'logins_total', { outcome: 'verified' }), verified + 1);
      assert.equal(await metric(proxy, 'checkouts_total', { result: 'reauthenticated' }), 1);
      await tx.rollback();
    } finally {
      await session.close();
      await holder.close();
      await proxy.stop();
    }
  });

  it('with minIdle 0 (the default) nothing is opened ahead', async () => {
    const proxy = await startTestProxy(relay.uri, { pooling: { mode: 'session' } });
    try {
      await perTask(proxy.boltUri, auth(), (driver) => driver.executeQuery('RETURN 1'));
      await eventually(async () => assert.equal(await metric(proxy, 'upstreams', { state: 'idle' }), 1));
      // Several sweeps later, still the client's own upstream alone.
      await delay(2500);
      assert.equal(sessions(relay).length, 1);
      assert.equal(await metric(proxy, 'upstreams', { state: 'idle' }), 1);
      assert.equal(await metric(proxy, 'upstreams', { state: 'opening' }), 0);
    } finally {
      await proxy.stop();
    }
  });

  it('transaction mode pre-warms too, and a key unused for idleTimeoutMs is no longer topped up', async () => {
    const proxy = await startTestProxy(relay.uri, {
      pooling: { mode: 'transaction', minIdle: 2, idleTimeoutMs: 1500, maxLifetimeMs: 4000 },
    });
    try {
      await perTask(proxy.boltUri, auth(), (driver) => driver.executeQuery('RETURN 1'));
      await eventually(async () => assert.equal(await metric(proxy, 'upstreams', { state: 'idle' }), 3));
      // Past the key's idle timeout every upstream reaches its lifetime, and none replaces them.
      await eventually(async () => assert.equal(await metric(proxy, 'upstreams', { state: 'idle' }), 0), {
        timeoutMs: 15_000,
      });
      const opened = sessions(relay).length;
      await delay(3500);
      assert.equal(sessions(relay).length, opened, 'no upstream opened for a key nobody uses');
      assert.equal(await metric(proxy, 'upstreams', { state: 'idle' }), 0);
      assert.equal(await metric(proxy, 'upstreams', { state: 'opening' }), 0);
    } finally {
      await proxy.stop();
    }
  });
});

describe('Neo4j’s timeout for connections without a login', () => {
  it('Neo4j closes a HELLO-only connection after 30 s; the pool replaces its pre-warmed ones before', {
    timeout: 120_000,
  }, async (t) => {
    const relay = await startBoltRelay(server.uri);
    const proxy = await startTestProxy(relay.uri, { pooling: { mode: 'session', minIdle: 2, idleTimeoutMs: 120_000 } });
    try {
      // Neo4j on its own: a connection that said HELLO and nothing more.
      const raw = await connectBolt58(hostPort(server.uri), [hello('prewarm-raw')]);
      const openedAt = Date.now();
      assert.equal((await raw.readMessage()).signature, BoltSignature.SUCCESS);
      let rawIsClosed = false;
      const rawClosed = raw.waitForClose(90_000).then(() => {
        rawIsClosed = true;
        return Date.now() - openedAt;
      });

      await perTask(proxy.boltUri, auth(), (driver) => driver.executeQuery('RETURN 1'));
      await eventually(async () => assert.equal(helloOnly(relay).length, 2));
      await eventually(
        async () =>
          assert.equal(await metric(proxy, 'upstreams_closed_total', { reason: 'unauthenticated_timeout' }), 2),
        { timeoutMs: UNAUTHENTICATED_MAX_AGE_MS + 10_000, intervalMs: 250 },
      );
      // In order, not by the clock: the raw connection opened before the pre-warmed ones, and Neo4j had
      // not closed it yet when the pool closed those.
      assert.equal(rawIsClosed, false, 'Neo4j closed a connection left after HELLO before the pool replaced its own');
      const survivedMs = await rawClosed;
      t.diagnostic(`Neo4j closed a connection left after HELLO ${survivedMs} ms after it opened`);
      // The key is still in use: topped up again to minIdle idle ones, the client's logged-in one counting,
      // and none of them met Neo4j's close.
      await eventually(async () => assert.equal(await metric(proxy, 'upstreams', { state: 'idle' }), 2));
      assert.equal(helloOnly(relay).length, 3);
      assert.equal(await metric(proxy, 'upstreams_closed_total', { reason: 'server_closed' }), 0);
      const opened = await metric(proxy, 'checkouts_total', { result: 'opened' });
      await perTask(proxy.boltUri, auth(), (driver) => driver.executeQuery('RETURN 1'));
      assert.equal(await metric(proxy, 'checkouts_total', { result: 'opened' }), opened);
    } finally {
      await proxy.stop();
      await relay.close();
    }
  });
});

describe('Neo4j stopped', () => {
  let own: LocalNeo4j;
  before(async () => {
    own = await startLocalNeo4j({ name: 'pooling-prewarm' });
  });
  after(async () => {
    await own?.destroy();
  });

  it('the top-up tries one connection a second, logs once, and fills up again when Neo4j is back', {
    timeout: 240_000,
  }, async (t) => {
    const relay = await startBoltRelay(own.uri);
    const proxy = await startTestProxy(relay.uri, {
      upstreamConnectTimeoutMs: 1000,
      pooling: { mode: 'session', minIdle: 2, idleTimeoutMs: 600_000 },
    });
    const token = neo4j.auth.basic(own.username, own.password);
    try {
      await perTask(proxy.boltUri, token, (driver) => driver.executeQuery('RETURN 1'));
      await eventually(async () => assert.equal(await metric(proxy, 'upstreams', { state: 'idle' }), 3));
      await own.stop();
      const logged = (words: string) =>
        proxy.logs.filter((line) => line.includes('pre-warming pooled Neo4j connections') && line.includes(words))
          .length;
      await eventually(() => assert.ok(logged('failed') >= 1, 'the failure is logged'));
      const warnings = logged('failed');
      const attemptsBefore = relay.connections.length;
      const startedMs = Date.now();
      // It keeps trying (giving up would be none) ...
      await eventually(() => assert.ok(relay.connections.length - attemptsBefore >= 3, 'three more attempts'), {
        timeoutMs: 30_000,
      });
      const windowMs = Date.now() - startedMs;
      const attempts = relay.connections.length - attemptsBefore;
      // ... at most one a sweep (every second), however long the window took: a tight loop would be thousands.
      t.diagnostic(`${attempts} connection attempts in ${windowMs} ms with Neo4j stopped`);
      assert.ok(
        attempts <= windowMs / SWEEP_INTERVAL_MS + 2,
        `${attempts} connection attempts in ${windowMs} ms: more than one a sweep`,
      );
      assert.equal(logged('failed'), warnings, 'no log line per attempt');
      assert.equal(await metric(proxy, 'upstreams', { state: 'idle' }), 0);
      assert.ok((await metric(proxy, 'upstreams_closed_total', { reason: 'server_closed' })) >= attempts);

      const recoveries = logged('works again');
      await own.start();
      // No client needed: the sweep finds Neo4j back.
      await eventually(async () => assert.equal(await metric(proxy, 'upstreams', { state: 'idle' }), 2), {
        timeoutMs: 15_000,
      });
      assert.equal(logged('works again'), recoveries + 1);
      const opened = await metric(proxy, 'checkouts_total', { result: 'opened' });
      const { records } = await perTask(proxy.boltUri, token, (driver) => driver.executeQuery('RETURN 3 AS three'));
      assert.equal(records[0]?.get('three').toNumber(), 3);
      assert.equal(await metric(proxy, 'checkouts_total', { result: 'opened' }), opened);
    } finally {
      await proxy.stop();
      await relay.close();
    }
  });
});

describe('pre-warming as shipped', () => {
  it('the real CLI with SIDECAR__PROXY__POOLING__MIN_IDLE pre-warms after the first client', {
    timeout: 120_000,
  }, async () => {
    const cli = await spawnSidecarCli(['run'], {
      NEO4J_URI: server.uri,
      NEO4J_PASSWORD: server.password,
      SIDECAR__PROXY__POOLING__MIN_IDLE: '2',
    });
    const userAgent = `prewarm-cli-${randomUUID()}`;
    const idle = async () =>
      parseExposition(await (await fetch(`${cli.httpUrl}/metrics`)).text()).samples.find(
        (sample) => sample.name === 'neo4j_proxy_pool_upstreams' && sample.labels.state === 'idle',
      )?.value;
    try {
      assert.ok(await cli.waitForOk('/healthz'), cli.logs());
      const uri = `bolt://127.0.0.1:${cli.proxyPort}`;
      await perTask(uri, auth(), (driver) => driver.executeQuery('RETURN 1'), { userAgent });
      await eventually(async () => assert.equal(await idle(), 3), { timeoutMs: 10_000 });
      const seen = await listed(direct, userAgent);
      assert.equal(seen.filter((connection) => connection.user === '').length, 2, JSON.stringify(seen));
    } finally {
      await cli.stop();
    }
  });
});
