/**
 * Cluster routing through the proxy with the Python, Java and Go drivers (issue 19; the JavaScript
 * driver is in routing.test.ts): the cluster scenarios of scripts/clients run against neo4j://<proxy>
 * in front of the test cluster (test/support/cluster.ts: three real Neo4j 5.26 members with marker
 * nodes). One cluster for the file; each driver has a scripted router and a not-a-leader member of its
 * own, so its table can change while the others' do not, and a fresh proxy per scenario, so the
 * proxy's first table is the one the scenario set. The three drivers run each scenario at the same
 * time to keep the file short; every assertion is per driver. Counts only: failover times are logged.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import neo4j, { type Driver } from 'neo4j-driver';
import type { ClusterLoadOutput } from '../../scripts/clients/run-scenario.ts';
import { POOLING_DEFAULTS } from '../../src/proxy/index.ts';
import {
  type NotALeaderMember,
  type ScriptedRouter,
  startNotALeaderMember,
  startScriptedRouter,
  startTestCluster,
  type TableByName,
  type TestCluster,
} from '../support/cluster.ts';
import { type ClusterClient, expectClusterLoad, processClusterClient } from './cluster-client.ts';
import type { ScenarioConnection } from './js-client.ts';
import { eventually, startTestProxy, type TestProxy } from './support.ts';

const READERS = ['reader-1', 'reader-2'] as const;
const MEMBERS = ['writer', ...READERS] as const;
/** The member that takes over writing when the table changes its writer. */
const NEW_WRITER = 'reader-1';
/** The reader killed under the read load. */
const KILLED_READER = 'reader-1';
const SURVIVING_READER = 'reader-2';
/** A table this short expires during a scenario, so the proxy picks up a change the test makes. */
const SHORT_TTL_SECONDS = 1;

/** One driver's own routing: its router, its stepped-down writer, and what it did across the file. */
interface DriverRig {
  readonly client: ClusterClient;
  /** python, java, go: names write ids and log lines. */
  readonly short: string;
  readonly router: ScriptedRouter;
  readonly notALeader: NotALeaderMember;
  /** Transactions the driver started across the file, for the TTL count. */
  transactions: number;
  /** ROUTEs the proxies fetched themselves (neo4j_proxy_routing_refreshes_total), summed over the file. */
  proxyRefreshes: number;
  /** The driver's own ROUTEs, answered through the proxy (neo4j_proxy_routing_tables_rewritten_total). */
  clientRoutes: number;
}

/** What each driver got, or why it could not run: one driver's failure does not hide the others'. */
type PerDriver<T> = Map<DriverRig, PromiseSettledResult<T>>;

async function eachDriver<T>(rigs: readonly DriverRig[], run: (rig: DriverRig) => Promise<T>): Promise<PerDriver<T>> {
  const settled = await Promise.allSettled(rigs.map(run));
  return new Map(rigs.map((rig, n) => [rig, settled[n] as PromiseSettledResult<T>]));
}

/** One subtest per driver over its own outcome. */
async function assertEachDriver<T>(
  t: TestContext,
  outcomes: PerDriver<T>,
  check: (rig: DriverRig, value: T) => Promise<void> | void,
): Promise<void> {
  for (const [rig, outcome] of outcomes) {
    await t.test(rig.client.name, async () => {
      if (outcome.status === 'rejected') throw outcome.reason;
      await check(rig, outcome.value);
    });
  }
}

describe('cluster routing through the proxy (Python, Java and Go drivers)', { timeout: 6 * 60_000 }, () => {
  let cluster: TestCluster;
  /** bolt:// straight to each member, to see what it stored. */
  const direct = new Map<string, Driver>();
  const rigs: DriverRig[] = [];
  const runId = `routing-drivers-${process.pid}`;

  before(async () => {
    const clients = [
      processClusterClient('python', '5'),
      processClusterClient('java', '5'),
      processClusterClient('go', '5'),
    ];
    [cluster] = await Promise.all([startTestCluster(), ...clients.map((client) => client.prepare())]);
    const login = { username: cluster.username, password: cluster.password };
    for (const name of MEMBERS) {
      const member = cluster.members[name];
      assert.ok(member, `cluster member ${name}`);
      direct.set(name, neo4j.driver(member.uri, neo4j.auth.basic(login.username, login.password), quiet));
    }
    for (const client of clients) {
      const short = client.name.split(' ')[0] as string;
      // Its first table is set before any client can ask (the router's address is known once it listens).
      const router = await startScriptedRouter({
        ...login,
        table: { ttlSeconds: 0, routers: [], writers: [], readers: [] },
      });
      const notALeader = await startNotALeaderMember({ ...login, name: `stepped-down-${short}` });
      rigs.push({ client, short, router, notALeader, transactions: 0, proxyRefreshes: 0, clientRoutes: 0 });
    }
  });

  after(async () => {
    for (const rig of rigs) await Promise.all([rig.router.close(), rig.notALeader.close()]);
    await Promise.all([...direct.values()].map((driver) => driver.close()));
    await cluster?.destroy();
  });

  function member(name: string) {
    const found = cluster.members[name];
    assert.ok(found, `cluster member ${name}`);
    return found;
  }

  /** The driver's router serves this table from its next ROUTE on; it names itself as the router. */
  function setTable(rig: DriverRig, roles: TableByName): void {
    rig.router.setTable(cluster.table({ routers: [rig.router.address], ...roles }));
  }

  function usualTable(ttlSeconds = 300): TableByName {
    return { ttlSeconds, writers: ['writer'], readers: [...READERS] };
  }

  /** A proxy in front of the driver's router, for one scenario; its routing counts are kept at the end. */
  async function withProxy<T>(rig: DriverRig, run: (connection: ScenarioConnection, proxy: TestProxy) => Promise<T>) {
    const proxy = await startTestProxy(rig.router.uri, { pooling: { ...POOLING_DEFAULTS, mode: 'transaction' } });
    try {
      return await run({ uri: proxy.routingUri, user: cluster.username, password: cluster.password }, proxy);
    } finally {
      rig.proxyRefreshes += await proxy.metric('neo4j_proxy_routing_refreshes_total');
      rig.clientRoutes += await proxy.metric('neo4j_proxy_routing_tables_rewritten_total', { via: 'ROUTE' });
      await proxy.stop();
    }
  }

  /** The load's checked report, its transactions counted for the TTL test. */
  function loadOf(rig: DriverRig, report: Parameters<typeof expectClusterLoad>[0]): ClusterLoadOutput {
    const load = expectClusterLoad(report);
    rig.transactions += load.reads.transactions + load.writes.transactions;
    return load;
  }

  /** The ClusterWrite ids under `prefix` each member holds, sorted. */
  async function storedIds(prefix: string): Promise<Record<string, string[]>> {
    const entries = await Promise.all(
      [...direct].map(async ([name, driver]) => {
        const { records } = await driver.executeQuery(
          'MATCH (w:ClusterWrite) WHERE w.id STARTS WITH $prefix RETURN w.id AS id ORDER BY id',
          { prefix: `${prefix}-` },
        );
        return [name, records.map((record) => record.get('id') as string)] as const;
      }),
    );
    return Object.fromEntries(entries);
  }

  function units(proxy: TestProxy, name: string, access: 'read' | 'write'): Promise<number> {
    return proxy.metric('neo4j_proxy_routing_units_total', { member: member(name).address, access });
  }

  it('spread: 300 reads over both readers and none on the writer, 30 writes on the writer only', async (t) => {
    const outcomes = await eachDriver(rigs, async (rig) => {
      setTable(rig, usualTable());
      const idPrefix = `${runId}-${rig.short}-spread`;
      const routesBefore = rig.router.routeRequests.total;
      const report = await withProxy(rig, (connection) =>
        rig.client.spread(connection, { reads: 300, writes: 30, concurrency: 4, idPrefix }),
      );
      return { report, idPrefix, routes: rig.router.routeRequests.total - routesBefore };
    });
    await assertEachDriver(t, outcomes, async (rig, { report, idPrefix, routes }) => {
      const load = loadOf(rig, report);
      console.log(
        `${rig.short}: read spread ${JSON.stringify(load.reads.byMember)}, writes ${JSON.stringify(load.writes.byMember)}, ` +
          `${routes} ROUTEs at the router for ${load.reads.transactions + load.writes.transactions} transactions`,
      );
      assert.deepEqual(load.failures, []);
      assert.equal(load.reads.committed, 300);
      assert.deepEqual(
        Object.keys(load.reads.byMember).sort(),
        [...READERS],
        'both readers served reads, the writer none',
      );
      assert.deepEqual(load.writes.byMember, { writer: 30 });
      // The table outlives the run: the proxy's first ROUTE per table and the driver's own few, not one per transaction.
      assert.ok(routes * 30 <= 330, `${routes} ROUTEs for 330 transactions`);
      const stored = await storedIds(idPrefix);
      assert.deepEqual(stored, { writer: [...load.acknowledgedWriteIds].sort(), 'reader-1': [], 'reader-2': [] });
    });
  });

  it('writer change: a write loop follows the table to the new writer; the write that met NotALeader is retried, none lost or doubled', async (t) => {
    const outcomes = await eachDriver(rigs, async (rig) => {
      setTable(rig, usualTable(SHORT_TTL_SECONDS));
      const idPrefix = `${runId}-${rig.short}-change`;
      return withProxy(rig, async (connection, proxy) => {
        const loop = await rig.client.startLoop('cluster-write-loop', connection, { concurrency: 1, idPrefix });
        try {
          await loop.whenCompleted(10);
          // The writer steps down: the proxy's next table names it, and it refuses writes with NotALeader.
          const refusedBefore = rig.notALeader.notALeaderAnswers;
          const changedMs = Date.now();
          setTable(rig, { ttlSeconds: SHORT_TTL_SECONDS, writers: [rig.notALeader.address], readers: [...READERS] });
          await pollUntil(() => rig.notALeader.notALeaderAnswers > refusedBefore, 60_000, 'a write met NotALeader');
          const refusedMs = Date.now();
          // The cluster has its new writer: the proxy's refresh after the refusal finds it.
          setTable(rig, { writers: [NEW_WRITER], readers: [...READERS] });
          const newWriter = direct.get(NEW_WRITER) as Driver;
          await pollUntil(
            async () => (await countWithPrefix(newWriter, idPrefix)) > 0,
            60_000,
            'a write on the new writer',
          );
          const firstOnNewMs = Date.now();
          await loop.whenCompleted(loop.progress().completed + 10);
          const report = await loop.stop();
          return {
            report,
            idPrefix,
            refused: rig.notALeader.notALeaderAnswers - refusedBefore,
            notALeaderRefreshes: await proxy.metric('neo4j_proxy_routing_refreshes_total', { reason: 'not_a_leader' }),
            fromChangeMs: firstOnNewMs - changedMs,
            fromRefusalMs: firstOnNewMs - refusedMs,
          };
        } finally {
          await loop.stop().catch(() => {});
        }
      });
    });
    await assertEachDriver(t, outcomes, async (rig, outcome) => {
      const load = loadOf(rig, outcome.report);
      console.log(
        `${rig.short}: writer change: first write acknowledged on the new writer ${outcome.fromChangeMs} ms after the ` +
          `table named the stepped-down writer, ${outcome.fromRefusalMs} ms after its first NotALeader; ` +
          `${outcome.refused} NotALeader answers, ${load.retried} transactions retried, writes ${JSON.stringify(load.writes.byMember)}`,
      );
      assert.deepEqual(load.failures, [], 'no write failed for good');
      assert.ok(outcome.refused >= 1, 'a write met NotALeader');
      // The refusal answers BEGIN, before the transaction function runs (so `retried` does not count it):
      // that the write meeting it was retried shows as every write started, one at a time, acknowledged.
      assert.equal(load.writes.committed, load.writes.transactions);
      const started = Array.from({ length: load.writes.transactions }, (_, n) => `${outcome.idPrefix}-${n}`);
      assert.deepEqual([...load.acknowledgedWriteIds].sort(), started.sort());
      assert.ok(outcome.notALeaderRefreshes >= 1, 'the refusal refreshed the proxy’s table');
      assert.deepEqual(Object.keys(load.writes.byMember).sort(), [NEW_WRITER, 'writer'].sort());
      // Every acknowledged id stored exactly once, and nothing stored that was not acknowledged.
      const stored = await storedIds(outcome.idPrefix);
      const everywhere = Object.values(stored).flat().sort();
      assert.deepEqual(everywhere, [...load.acknowledgedWriteIds].sort());
      assert.equal(new Set(everywhere).size, everywhere.length, 'no id committed twice');
      assert.deepEqual(stored['reader-2'], []);
      // One write at a time: once on the new writer, the writes never went back to the old one.
      const sequence = (id: string) => Number(id.slice(outcome.idPrefix.length + 1));
      const lastOnOld = Math.max(...(stored.writer ?? []).map(sequence));
      const firstOnNew = Math.min(...(stored[NEW_WRITER] ?? []).map(sequence));
      assert.ok(
        lastOnOld < firstOnNew,
        `writes on the old writer up to ${lastOnOld}, on the new one from ${firstOnNew}`,
      );
    });
  });

  it('reader loss: a read loop goes on over the other reader while one is killed, and uses it again once it is back', async (t) => {
    const killed = member(KILLED_READER).server;
    // Each driver's load reaches these points; the kill and the restart wait for every driver that got there.
    const loaded = new Map(rigs.map((rig) => [rig, milestone()]));
    const readDuringLoss = new Map(rigs.map((rig) => [rig, milestone()]));
    const kill = milestone();
    const restart = milestone();
    const outcomes = eachDriver(rigs, async (rig) => {
      // A short TTL: a refresh brings the restarted reader back into the proxy's table.
      setTable(rig, usualTable(SHORT_TTL_SECONDS));
      try {
        return await withProxy(rig, async (connection, proxy) => {
          const loop = await rig.client.startLoop('cluster-read-loop', connection, { concurrency: 1 });
          try {
            await loop.whenCompleted(20);
            loaded.get(rig)?.resolve();
            await kill.promise;
            const atKill = loop.progress().completed;
            await loop.whenCompleted(atKill + 30);
            const whileDown = loop.progress().completed - atKill;
            readDuringLoss.get(rig)?.resolve();
            await restart.promise;
            const onKilledBefore = await units(proxy, KILLED_READER, 'read');
            await eventually(
              async () => assert.ok((await units(proxy, KILLED_READER, 'read')) > onKilledBefore, 'reads on it again'),
              60_000,
            );
            return {
              report: await loop.stop(),
              whileDown,
              readerFailovers: await proxy.metric('neo4j_proxy_routing_failovers_total', { role: 'reader' }),
            };
          } finally {
            await loop.stop().catch(() => {});
          }
        });
      } finally {
        loaded.get(rig)?.reject(new Error(`${rig.short} never loaded`));
        readDuringLoss.get(rig)?.reject(new Error(`${rig.short} stopped`));
      }
    });
    let downMs = 0;
    try {
      await Promise.allSettled([...loaded.values()].map((point) => point.promise));
      const pid = killed.pid();
      assert.ok(pid !== undefined, `${KILLED_READER} is running`);
      const killedMs = Date.now();
      process.kill(pid, 'SIGKILL');
      kill.resolve();
      await Promise.allSettled([...readDuringLoss.values()].map((point) => point.promise));
      await pollUntil(() => killed.pid() === undefined, 30_000, `${KILLED_READER} gone after SIGKILL`);
      await killed.start();
      downMs = Date.now() - killedMs;
      restart.resolve();
    } finally {
      kill.resolve();
      restart.resolve();
      if (killed.pid() === undefined) await killed.start();
    }
    await assertEachDriver(t, await outcomes, (rig, { report, whileDown, readerFailovers }) => {
      const load = loadOf(rig, report);
      console.log(
        `${rig.short}: reader loss (${KILLED_READER} SIGKILLed, up again ${downMs} ms later): reads ` +
          `${JSON.stringify(load.reads.byMember)}, ${load.retried} transactions retried, ${readerFailovers} reader failovers`,
      );
      assert.deepEqual(load.failures, [], 'the driver’s retries absorbed the killed reader');
      assert.deepEqual(Object.keys(load.reads.byMember).sort(), [...READERS], 'no read on the writer');
      // Progress is reported every tenth transaction and one may have been in flight at the kill: the
      // rest of the reads counted while the reader was down were served by the other one.
      assert.ok(whileDown >= 30);
      assert.ok((load.reads.byMember[SURVIVING_READER] ?? 0) >= whileDown - 11, 'the other reader carried the load');
      assert.ok(readerFailovers >= 1, 'the proxy routed around the killed reader');
    });
  });

  it('TTL: the ROUTEs at each router are far fewer than the transactions', async (t) => {
    for (const rig of rigs) {
      await t.test(rig.client.name, () => {
        const routes = rig.router.routeRequests.total;
        console.log(
          `${rig.short}: ${routes} ROUTEs at the router (${rig.proxyRefreshes} the proxies' own, ${rig.clientRoutes} ` +
            `the driver's through them) for ${rig.transactions} transactions`,
        );
        assert.ok(rig.transactions >= 400, `${rig.transactions} transactions`);
        assert.equal(routes, rig.proxyRefreshes + rig.clientRoutes, 'every ROUTE is the proxy’s or the driver’s');
        assert.ok(routes * 10 <= rig.transactions, `${routes} ROUTEs for ${rig.transactions} transactions`);
      });
    }
  });
});

const quiet = { logging: { level: 'error' as const, logger: () => {} } };

async function countWithPrefix(driver: Driver, prefix: string): Promise<number> {
  const { records } = await driver.executeQuery(
    'MATCH (w:ClusterWrite) WHERE w.id STARTS WITH $prefix RETURN count(w) AS n',
    { prefix: `${prefix}-` },
  );
  return Number(records[0]?.get('n') ?? 0);
}

/** A point a concurrent flow reaches (resolve) or never will (reject); settling twice is harmless. */
function milestone(): { promise: Promise<void>; resolve(): void; reject(error: Error): void } {
  let resolve: () => void = () => {};
  let reject: (error: Error) => void = () => {};
  const promise = new Promise<void>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** Polls every 10 ms (tighter than eventually's default) so a measured moment is close to the event. */
async function pollUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}
