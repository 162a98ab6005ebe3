/**
 * Cluster routing through the proxy with the real JavaScript driver (issue 19): neo4j://<proxy> in
 * front of the test cluster (test/support/cluster.ts: three real Neo4j 5.26 members with marker nodes
 * behind the scripted router, plus a scripted member that refuses writes with NotALeader). One cluster
 * for the file; each test starts its own proxy, so its routing tables and metrics start empty.
 *
 * Every query says which member served it (its marker), and the proxy's metrics must agree. Failover
 * times are measured and written as diagnostics, never asserted: the machine is shared.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import neo4j, { type Driver, Neo4jError } from 'neo4j-driver';
import { BoltSignature, type PackStreamMap } from '../../src/proxy/bolt/index.ts';
import { POOLING_DEFAULTS, UPSTREAM_UNAVAILABLE_CODE } from '../../src/proxy/index.ts';
import {
  type NotALeaderMember,
  READ_MEMBER_QUERY,
  startNotALeaderMember,
  startTestCluster,
  type TestCluster,
  WRITE_MEMBER_QUERY,
} from '../support/cluster.ts';
import { describeMessage, loggedInBolt58, map, message } from '../support/raw-bolt.ts';
import { eventually, startTestProxy, type TestProxy } from './support.ts';

const quietLogging = { logging: { level: 'error' as const, logger: () => {} } };
const READERS = ['reader-1', 'reader-2'] as const;
/** READ_MEMBER_QUERY made to keep its member busy a while, so a kill finds reads under way there. */
const SLOW_READ_MEMBER_QUERY =
  'MATCH (m:ClusterMember) WITH m, reduce(total = 0, i IN range(1, 200000) | total + i) AS busy RETURN m.name AS member';

/**
 * What a load of managed transactions saw: members by marker, acknowledged write ids, final failures.
 * Retries are not counted here: the driver retries a failed BEGIN without calling the transaction
 * function again, so the tests count them as units the proxy routed beyond those acknowledged.
 */
class LoadTally {
  readonly served = new Map<string, number>();
  readonly acknowledged: string[] = [];
  readonly failures: unknown[] = [];
  /** Each acknowledged transaction's member, when it was started and when it returned (ms since the epoch). */
  readonly events: Array<{ member: string; startedMs: number; endedMs: number }> = [];

  count(member: string): number {
    return this.served.get(member) ?? 0;
  }

  record(member: string, startedMs: number): void {
    this.served.set(member, this.count(member) + 1);
    this.events.push({ member, startedMs, endedMs: Date.now() });
  }

  get total(): number {
    return this.events.length;
  }

  asObject(): Record<string, number> {
    return Object.fromEntries([...this.served].sort(([a], [b]) => a.localeCompare(b)));
  }
}

interface UnitOptions {
  /** The session's database; default none (the user's home database, resolved by the driver). */
  readonly database?: string;
  /** A read query other than READ_MEMBER_QUERY (one that takes longer); same column. */
  readonly query?: string;
}

/** One managed read in a session of its own: the member that served it. */
async function managedRead(driver: Driver, tally: LoadTally, options: UnitOptions = {}): Promise<void> {
  const session = driver.session({ defaultAccessMode: neo4j.session.READ, database: options.database });
  const startedMs = Date.now();
  try {
    const member = await session.executeRead(async (tx) => {
      const result = await tx.run(options.query ?? READ_MEMBER_QUERY);
      return result.records[0]?.get('member') as string;
    });
    tally.record(member, startedMs);
  } catch (error) {
    tally.failures.push(error);
  } finally {
    await session.close();
  }
}

/** One managed write of a fresh id in a session of its own: the member that took it. */
async function managedWrite(driver: Driver, tally: LoadTally, id: string, options: UnitOptions = {}): Promise<void> {
  const session = driver.session({ defaultAccessMode: neo4j.session.WRITE, database: options.database });
  const startedMs = Date.now();
  try {
    const member = await session.executeWrite(async (tx) => {
      const result = await tx.run(WRITE_MEMBER_QUERY, { id });
      return result.records[0]?.get('member') as string;
    });
    tally.record(member, startedMs);
    tally.acknowledged.push(id);
  } catch (error) {
    tally.failures.push(error);
  }
  await session.close();
}

/** `workers` loops of `step` until `done` says so (checked before each step). */
async function inParallel(workers: number, done: () => boolean, step: (worker: number) => Promise<void>) {
  await Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      while (!done()) await step(worker);
    }),
  );
}

/** A load running in the background until stop() is called. */
function backgroundLoad(workers: number, step: (worker: number) => Promise<void>): { stop(): Promise<void> } {
  let stopped = false;
  const running = inParallel(
    workers,
    () => stopped,
    (worker) => step(worker),
  );
  return {
    stop() {
      stopped = true;
      return running;
    },
  };
}

/** When the proxy logged `msg` (ms since the epoch), in order. */
function logTimes(proxy: TestProxy, msg: string): number[] {
  return proxy.logs
    .map((line) => JSON.parse(line) as { msg?: string; time?: number })
    .filter((entry) => entry.msg === msg && typeof entry.time === 'number')
    .map((entry) => entry.time as number);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

describe('cluster routing through the proxy (JavaScript driver)', () => {
  let cluster: TestCluster;
  let notALeader: NotALeaderMember;
  /** Ids unique to this run, so a write is counted only where this run wrote it. */
  const runId = `routing-js-${process.pid}-${Date.now()}`;

  before(async () => {
    cluster = await startTestCluster();
    notALeader = await startNotALeaderMember({
      name: 'stepped-down',
      username: cluster.username,
      password: cluster.password,
    });
  });
  after(async () => {
    await notALeader?.close();
    await cluster?.destroy();
  });

  /** The cluster's usual table: the writer writes, both readers read, the scripted router routes. */
  function usualTable(ttlSeconds = 300) {
    return cluster.table({ ttlSeconds, writers: ['writer'], readers: [...READERS] });
  }

  async function withProxy(run: (proxy: TestProxy, driver: Driver) => Promise<void>): Promise<void> {
    const proxy = await startTestProxy(cluster.router.uri, {
      pooling: { ...POOLING_DEFAULTS, mode: 'transaction' },
    });
    const driver = neo4j.driver(proxy.routingUri, neo4j.auth.basic(cluster.username, cluster.password), quietLogging);
    try {
      await run(proxy, driver);
    } finally {
      await driver.close();
      await proxy.stop();
    }
  }

  /** Each id stored exactly once in the cluster, on the writer (ten ids at a time: three queries each). */
  async function assertStoredOnceOnWriter(ids: readonly string[]): Promise<void> {
    for (let start = 0; start < ids.length; start += 10) {
      const batch = ids.slice(start, start + 10);
      const counts = await Promise.all(batch.map((id) => cluster.countWrites(id)));
      for (const [n, count] of counts.entries()) {
        assert.deepEqual(count, { writer: 1, 'reader-1': 0, 'reader-2': 0 }, batch[n]);
      }
    }
  }

  function member(name: string) {
    const found = cluster.members[name];
    assert.ok(found, `cluster member ${name}`);
    return found;
  }

  it("answers a client's ROUTE with a table naming only the proxy, whatever the cluster's table names", async () => {
    cluster.router.setTable(usualTable());
    await withProxy(async (proxy, driver) => {
      const client = await loggedInBolt58(proxy.proxy.address, {
        userAgent: 'routing-test/1.0',
        username: cluster.username,
        password: cluster.password,
      });
      try {
        client.write(message(BoltSignature.ROUTE, map({ address: proxy.proxy.address }), [], map({})));
        const reply = await client.readMessage();
        assert.equal(reply.signature, BoltSignature.SUCCESS, describeMessage(reply));
        const rt = (reply.fields[0] as PackStreamMap).get('rt') as PackStreamMap;
        const servers = rt.get('servers') as PackStreamMap[];
        assert.deepEqual(servers.map((entry) => entry.get('role')).sort(), ['READ', 'ROUTE', 'WRITE']);
        for (const entry of servers) assert.deepEqual(entry.get('addresses'), [proxy.proxy.advertisedAddress]);
        assert.equal(rt.get('db'), 'neo4j');
      } finally {
        client.close();
      }
      // The driver's own routing keeps every read and write on the proxy, served by the members behind it.
      const read = await driver.executeQuery(READ_MEMBER_QUERY, {}, { routing: neo4j.routing.READ });
      const write = await driver.executeQuery(
        WRITE_MEMBER_QUERY,
        { id: `${runId}-table` },
        { routing: neo4j.routing.WRITE },
      );
      assert.equal(read.summary.server.address, proxy.proxy.advertisedAddress);
      assert.equal(write.summary.server.address, proxy.proxy.advertisedAddress);
      assert.ok(READERS.includes(read.records[0]?.get('member')), 'the read was served by a reader');
      assert.equal(write.records[0]?.get('member'), 'writer');
    });
  });

  it('sends writes to the writer only and spreads 300 managed reads over the readers', async (t: TestContext) => {
    cluster.router.setTable(usualTable());
    await withProxy(async (proxy, driver) => {
      const routesBefore = cluster.router.routeRequests.total;
      const reads = new LoadTally();
      let readsStarted = 0;
      await inParallel(
        6,
        () => readsStarted >= 300,
        () => {
          readsStarted++;
          return managedRead(driver, reads);
        },
      );
      const writes = new LoadTally();
      const ids = Array.from({ length: 30 }, (_, n) => `${runId}-spread-${n}`);
      let next = 0;
      await inParallel(
        3,
        () => next >= ids.length,
        () => managedWrite(driver, writes, ids[next++] as string),
      );
      const proxyRefreshes = await proxy.metric('neo4j_proxy_routing_refreshes_total');
      t.diagnostic(`read spread over 300 managed reads (6 at a time): ${JSON.stringify(reads.asObject())}`);
      t.diagnostic(
        `330 transactions in sessions on the home database: ${proxyRefreshes} routing table fetch(es) by the ` +
          `proxy, ${cluster.router.routeRequests.total - routesBefore} ROUTEs at the router (the driver's own, ` +
          'resolving the home database, are answered by the proxy from its table once it has one)',
      );

      assert.deepEqual(reads.failures, []);
      assert.equal(reads.total, 300);
      assert.equal(reads.count('writer'), 0, 'no read reached the writer');
      for (const reader of READERS) assert.ok(reads.count(reader) > 0, `${reader} served some reads`);
      assert.deepEqual(writes.failures, []);
      assert.deepEqual(writes.asObject(), { writer: 30 });

      // The proxy's own count by member agrees with the markers, unit for unit.
      const units = (name: string, access: string) =>
        proxy.metric('neo4j_proxy_routing_units_total', { member: member(name).address, access });
      for (const reader of READERS) {
        assert.equal(await units(reader, 'read'), reads.count(reader), `${reader} reads by metric`);
        assert.equal(await units(reader, 'write'), 0);
      }
      assert.equal(await units('writer', 'read'), 0);
      assert.equal(await units('writer', 'write'), 30);
      // The proxy's table is fetched once per database and kept (TTL 300 s), not once per transaction;
      // a unit on the home database fetches once more before ROUTE says which database that is (the
      // driver names the database in some BEGINs and not in others), then shares that database's table.
      const tables = proxy.proxy.status().routing?.tables.length ?? 0;
      assert.equal(tables, 1);
      const firstFetches = await proxy.metric('neo4j_proxy_routing_refreshes_total', { reason: 'first' });
      assert.ok(firstFetches >= 1 && firstFetches <= 2, `${firstFetches} first fetches`);
      assert.equal(proxyRefreshes, firstFetches);

      // Stored exactly once, on the writer alone.
      await assertStoredOnceOnWriter(ids);
    });
  });

  it('follows a writer change within one refresh: the write that met NotALeader is retried and stored once', async (t: TestContext) => {
    // The proxy first learns a table whose writer has since stepped down (it now answers NotALeader);
    // then the router names the new writer.
    cluster.router.setTable(cluster.table({ writers: [notALeader.address], readers: [...READERS] }));
    await withProxy(async (proxy, driver) => {
      // Primer and writes name the database, so they use the one table the proxy keeps for it (a unit
      // on the home database would fetch a fresh table before it is known to be the same database).
      const database = 'neo4j';
      const primer = new LoadTally();
      await managedRead(driver, primer, { database });
      assert.deepEqual(primer.failures, []);
      const refusedBefore = notALeader.notALeaderAnswers;
      cluster.router.setTable(usualTable());
      const changedMs = Date.now();

      const workers = 4;
      const writes = new LoadTally();
      let next = 0;
      await inParallel(
        workers,
        () => next >= 40,
        () => managedWrite(driver, writes, `${runId}-change-${next++}`, { database }),
      );
      const refused = notALeader.notALeaderAnswers - refusedBefore;
      const learnedMs = logTimes(proxy, 'writer refused a write; routing table refresh due')[0] ?? Number.NaN;
      const firstAfterLearned = Math.min(
        ...writes.events.filter((event) => event.endedMs >= learnedMs).map((event) => event.endedMs),
      );
      const longest = Math.max(...writes.events.map((event) => event.endedMs - event.startedMs));
      t.diagnostic(
        `writer change: ${refused} write(s) met NotALeader; first write acknowledged by the new writer ` +
          `${Math.min(...writes.events.map((event) => event.endedMs)) - changedMs} ms after the table changed, ` +
          `${firstAfterLearned - learnedMs} ms after the proxy met NotALeader; the longest write ` +
          `(one that met it and was retried by executeWrite) took ${longest} ms`,
      );

      assert.deepEqual(writes.failures, [], 'every write succeeded, those that met NotALeader on a retry');
      assert.deepEqual(writes.asObject(), { writer: 40 }, 'every acknowledged write was taken by the new writer');
      // Only the units under way when the old writer refused went to it: the refresh moved every later one.
      assert.ok(refused >= 1 && refused <= workers, `${refused} writes met NotALeader`);
      const units = (address: string) =>
        proxy.metric('neo4j_proxy_routing_units_total', { member: address, access: 'write' });
      assert.equal(await units(notALeader.address), refused);
      assert.equal(await units(member('writer').address), 40, 'each write reached the new writer once');
      const notALeaderRefreshes = await proxy.metric('neo4j_proxy_routing_refreshes_total', { reason: 'not_a_leader' });
      assert.ok(notALeaderRefreshes >= 1 && notALeaderRefreshes <= refused, `${notALeaderRefreshes} refreshes`);
      assert.ok((await proxy.metric('neo4j_proxy_routing_failovers_total', { role: 'writer' })) >= 1);

      // Nothing lost, nothing committed twice: each acknowledged id exactly once, on the writer.
      await assertStoredOnceOnWriter(writes.acknowledged);
    });
  });

  it("honours the table's TTL: about one ROUTE per TTL period, never one per transaction", async (t: TestContext) => {
    const ttlSeconds = 2;
    cluster.router.setTable(usualTable(ttlSeconds));
    // Sessions name their database: the driver then keeps its own table for the TTL too (on the home
    // database it ROUTEs once per session to resolve it, and those ROUTEs pass through the proxy).
    const database = 'neo4j';
    await withProxy(async (proxy, driver) => {
      const routesBefore = cluster.router.routeRequests.total;
      const startedMs = Date.now();
      const load = new LoadTally();
      let n = 0;
      // Until the proxy has refreshed on expiry three times: a proxy that ignored the TTL never gets there.
      const expiries = () => proxy.metric('neo4j_proxy_routing_refreshes_total', { reason: 'expired' });
      let refreshedOnExpiry = 0;
      const deadlineMs = startedMs + 60_000;
      await inParallel(
        2,
        () => refreshedOnExpiry >= 3 || Date.now() > deadlineMs,
        async (worker) => {
          if (worker === 0) await managedRead(driver, load, { database });
          else await managedWrite(driver, load, `${runId}-ttl-${n++}`, { database });
          refreshedOnExpiry = await expiries();
        },
      );
      const elapsedMs = Date.now() - startedMs;
      const routes = cluster.router.routeRequests.total - routesBefore;
      const clientRoutes = await proxy.metric('neo4j_proxy_routing_tables_rewritten_total', { via: 'ROUTE' });
      const proxyRefreshes = await proxy.metric('neo4j_proxy_routing_refreshes_total');
      const tables = proxy.proxy.status().routing?.tables.length ?? 0;
      t.diagnostic(
        `TTL ${ttlSeconds} s over ${elapsedMs} ms: ${load.total} transactions, ${routes} ROUTEs at the router ` +
          `(${proxyRefreshes} the proxy's own for ${tables} table(s), ${clientRoutes} the driver's through it)`,
      );

      assert.deepEqual(load.failures, []);
      assert.ok(refreshedOnExpiry >= 3, `the proxy refreshed on expiry ${refreshedOnExpiry} times in 60 s`);
      assert.equal(tables, 1, 'one database, one table');
      assert.equal(routes, proxyRefreshes + clientRoutes, "every ROUTE at the router is the proxy's or the driver's");
      assert.ok(load.total >= 10 * routes, `${routes} ROUTEs for ${load.total} transactions`);
      // Why a clock here cannot flake: a table is refetched only once it is ttl old, so the proxy's
      // fetches are at least ttl apart; a slow machine only makes elapsedMs longer and this looser
      // (rounded up: the proxy's clock and this one may differ by a few milliseconds).
      const periods = Math.ceil(elapsedMs / (ttlSeconds * 1000));
      assert.ok(proxyRefreshes <= periods + 1, `${proxyRefreshes} refreshes in ${periods} TTL periods`);
    });
  });

  it('reads go on when a reader is killed, fail retryably with none left, and recover when they return', async (t: TestContext) => {
    cluster.router.setTable(usualTable());
    await withProxy(async (proxy, driver) => {
      const reads = new LoadTally();
      const writes = new LoadTally();
      let writeId = 0;
      // Reads that take a while on the member, so some are under way on the reader when it is killed.
      const readLoad = backgroundLoad(4, () => managedRead(driver, reads, { query: SLOW_READ_MEMBER_QUERY }));
      const writeLoad = backgroundLoad(1, async () => {
        await managedWrite(driver, writes, `${runId}-loss-${writeId++}`);
        await sleep(100);
      });
      const survivor = member('reader-2').server;
      const killed = member('reader-1').server;
      try {
        await eventually(() => {
          for (const reader of READERS) assert.ok(reads.count(reader) >= 5, `${reader} served reads`);
        }, 30_000);

        // One reader killed under the read load: the others carry on.
        const killedPid = killed.pid();
        assert.ok(killedPid !== undefined);
        const killedMs = Date.now();
        process.kill(killedPid, 'SIGKILL');
        await eventually(() => {
          const since = reads.events.filter((event) => event.startedMs > killedMs && event.member === 'reader-2');
          assert.ok(since.length >= 30, `${since.length} reads on reader-2 since the kill`);
        }, 60_000);
        await readLoad.stop();
        const readUnits = await proxy.metric('neo4j_proxy_routing_units_total', { access: 'read' });
        const inFlight = reads.events.filter((event) => event.startedMs < killedMs && event.endedMs > killedMs);
        const firstElsewhere = reads.events.find((event) => event.startedMs > killedMs && event.member === 'reader-2');
        const longest = Math.max(...inFlight.map((event) => event.endedMs - event.startedMs), 0);
        const typical = median(reads.events.map((event) => event.endedMs - event.startedMs));
        t.diagnostic(
          `reader killed: first read started after the kill acknowledged by reader-2 ` +
            `${(firstElsewhere?.endedMs ?? Number.NaN) - killedMs} ms after it; ${inFlight.length} read(s) under ` +
            `way at the kill, the longest of them ${longest} ms (median read ${typical} ms); ` +
            `${readUnits - reads.total} read unit(s) cut off and retried by executeRead`,
        );
        assert.deepEqual(reads.failures, [], 'executeRead absorbed every error of the killed reader');
        assert.equal(reads.count('writer'), 0, 'no read went to the writer');
        assert.ok((await proxy.metric('neo4j_proxy_routing_failovers_total', { role: 'reader' })) >= 1);

        // Every reader gone: a read fails at once with a retryable error, and the proxy stays up.
        await survivor.stop();
        const noRetry = neo4j.driver(proxy.routingUri, neo4j.auth.basic(cluster.username, cluster.password), {
          ...quietLogging,
          maxTransactionRetryTime: 0,
        });
        try {
          const refused = await noRetry.executeQuery(READ_MEMBER_QUERY, {}, { routing: neo4j.routing.READ }).then(
            () => null,
            (error: unknown) => error,
          );
          assert.ok(refused instanceof Neo4jError, `a read with no reader fails: ${String(refused)}`);
          assert.equal(refused.code, UPSTREAM_UNAVAILABLE_CODE, refused.message);
          assert.ok(neo4j.isRetryableError(refused), 'the error is one managed transactions retry');
        } finally {
          await noRetry.close();
        }
        const writesBefore = writes.total;
        await eventually(() => assert.ok(writes.total >= writesBefore + 3, 'writes go on with no reader'), 30_000);

        // The readers return: reads are served by them again.
        const restartMs = Date.now();
        await Promise.all([killed.start(), survivor.start()]);
        const startedMs = Date.now();
        const recovered = new LoadTally();
        await eventually(async () => {
          await managedRead(driver, recovered);
          for (const reader of READERS) assert.ok(recovered.count(reader) >= 1, `${reader} serves reads again`);
        }, 30_000);
        const firstBack = (name: string) =>
          (recovered.events.find((event) => event.member === name)?.endedMs ?? Number.NaN) - startedMs;
        t.diagnostic(
          `readers restarted in ${startedMs - restartMs} ms; then reads served by reader-1 after ` +
            `${firstBack('reader-1')} ms, by reader-2 after ${firstBack('reader-2')} ms`,
        );
        assert.deepEqual(recovered.failures, []);
        assert.equal(recovered.count('writer'), 0);
      } finally {
        await readLoad.stop();
        await writeLoad.stop();
      }
      assert.deepEqual(writes.failures, [], 'writes kept working throughout');
      assert.ok(writes.total > 0);
      assert.deepEqual(writes.asObject(), { writer: writes.total });
      await assertStoredOnceOnWriter(writes.acknowledged);
    });
  });
});
