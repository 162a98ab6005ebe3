/**
 * Planned maintenance through the real CLI, a real Neo4j of the test's own and real drivers:
 * pause, restart, resume under 12 per-task writers loses no task; pause answers only after an open
 * explicit transaction commits; a pause left on is ended by the maximum and the clients it held go
 * on; the views say what the pool holds. Every verb is the `neo4j-pool-sidecar` command run with the
 * environment the sidecar was started with, as `kubectl exec` would run it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import neo4j, { type Driver } from 'neo4j-driver';
import { committedIds, judge, startJsLoad, type TaskShape } from '../../scripts/load/per-task-writes.ts';
import type { LocalNeo4j } from '../../scripts/neo4j/local-neo4j.ts';
import type { ClientsView, PauseReport, PoolsView } from '../../src/proxy/index.ts';
import { runSidecarCli, runSidecarCliAsync, type SidecarCli, spawnSidecarCli } from '../support/cli.ts';
import { eventually } from '../support/eventually.ts';
import { privateNeo4j } from '../support/neo4j.ts';
import { parseExposition } from '../support/prometheus-text.ts';

const WORKERS = 12;
const QUIET = { logging: { level: 'error' as const, logger: () => {} } };

let server: LocalNeo4j;
before(async () => {
  server = await privateNeo4j('maintenance');
});
after(async () => {
  await server?.destroy();
});

async function startSidecar(env: Record<string, string> = {}): Promise<SidecarCli> {
  const sidecar = await spawnSidecarCli(['run'], {
    NEO4J_URI: server.uri,
    NEO4J_PASSWORD: server.password,
    SIDECAR__PROXY__POOLING__MODE: 'transaction',
    SIDECAR__PROBES__ENABLED: 'false',
    ...env,
  });
  assert.ok(await sidecar.waitForOk('/healthz'), `the sidecar did not start:\n${sidecar.logs()}`);
  return sidecar;
}

/** `neo4j-pool-sidecar <verb>` with the sidecar's own environment, run in a child as kubectl exec would. */
function verb(sidecar: SidecarCli, args: string[]) {
  return runSidecarCli(args, { SIDECAR__HTTP__PORT: String(sidecar.httpPort) });
}

/** `verb` without blocking the test's event loop (spawnSync would freeze the drivers under test). */
function verbAsync(sidecar: SidecarCli, args: string[]) {
  return runSidecarCliAsync(args, { SIDECAR__HTTP__PORT: String(sidecar.httpPort) });
}

async function getJson<T>(sidecar: SidecarCli, path: string): Promise<T> {
  const response = await fetch(`${sidecar.httpUrl}${path}`);
  assert.equal(response.status, 200, `${path}: ${await response.clone().text()}`);
  return (await response.json()) as T;
}

async function metric(sidecar: SidecarCli, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${sidecar.httpUrl}/metrics`)).text();
  return parseExposition(text)
    .samples.filter(
      (sample) =>
        sample.name === name && Object.entries(labels).every(([label, value]) => sample.labels[label] === value),
    )
    .reduce((sum, sample) => sum + sample.value, 0);
}

function proxyDriver(sidecar: SidecarCli): Driver {
  return neo4j.driver(`bolt://127.0.0.1:${sidecar.proxyPort}`, neo4j.auth.basic(server.username, server.password), {
    ...QUIET,
  });
}

describe('a planned Neo4j restart: pause, restart, resume', { timeout: 10 * 60_000 }, () => {
  let sidecar: SidecarCli;
  before(async () => {
    sidecar = await startSidecar();
  });
  after(() => sidecar?.stop());

  for (const shape of ['session.run', 'executeQuery'] as const satisfies readonly TaskShape[]) {
    it(`fails no task of ${WORKERS} per-task ${shape} writers and loses or doubles no write`, async () => {
      const runId = `planned-${shape}-${Date.now()}`;
      const load = startJsLoad({
        uri: `bolt://127.0.0.1:${sidecar.proxyPort}`,
        username: server.username,
        password: server.password,
        runId,
        workers: WORKERS,
        shape,
      });
      // Some tasks before the pause, so the pause drains real work.
      await eventually(() => assert.ok(load.finished() >= 3 * WORKERS, `${load.finished()} tasks so far`), 60_000);
      const pause = await verbAsync(sidecar, ['pause', '--drain-timeout', '60']);
      assert.equal(pause.status, 0, `${pause.stdout}${pause.stderr}`);
      assert.match(pause.stdout, /paused since .*: drained/);
      const pools = await getJson<PoolsView>(sidecar, '/proxy/pools');
      assert.equal(pools.paused, true);
      assert.equal(pools.lent, 0, 'drained: nothing lent');

      await server.stop();
      await server.start();
      // Held clients wait for the resume: some of the 12 workers must be held by now.
      await eventually(async () => assert.ok((await getJson<PoolsView>(sidecar, '/proxy/pools')).held > 0), 60_000);
      const resume = await verbAsync(sidecar, ['resume']);
      assert.equal(resume.status, 0, resume.stderr);
      assert.match(resume.stdout, /resumed after .* s paused; \d+ held clients? released/);

      const afterResume = load.finished();
      await eventually(() => assert.ok(load.finished() >= afterResume + 3 * WORKERS), 60_000);
      const records = await load.stop();
      const observer = neo4j.driver(server.uri, neo4j.auth.basic(server.username, server.password), QUIET);
      try {
        const verdict = judge(records, await committedIds(observer, runId));
        console.log(`planned restart, ${shape}: ${JSON.stringify(verdict)}`);
        assert.equal(verdict.failed, 0, `failed tasks: ${JSON.stringify(verdict.failuresByCode)}`);
        assert.equal(verdict.lost, 0);
        assert.equal(verdict.duplicated, 0);
      } finally {
        await observer.close();
      }
      assert.ok((await metric(sidecar, 'neo4j_proxy_pool_holds_total', { reason: 'paused', outcome: 'released' })) > 0);
    });
  }
});

describe('pause and the work in flight', { timeout: 5 * 60_000 }, () => {
  let sidecar: SidecarCli;
  before(async () => {
    sidecar = await startSidecar();
  });
  after(() => sidecar?.stop());

  it('answers only after an open explicit transaction commits, and reports it while it runs', async () => {
    const driver = proxyDriver(sidecar);
    const session = driver.session();
    try {
      const transaction = await session.beginTransaction();
      await transaction.run('CREATE (:MaintenanceProbe {at: timestamp()})');
      // A pause that cannot drain while the transaction is open reports it, and stays paused.
      const short = await verbAsync(sidecar, ['pause', '--drain-timeout', '0', '--json']);
      assert.equal(short.status, 3, short.stdout + short.stderr);
      const report = JSON.parse(short.stderr) as PauseReport;
      assert.equal(report.drained, false);
      assert.equal(report.running.upstreamsLent, 1);
      assert.equal(report.running.clients.in_unit, 1);

      let answered = false;
      const pause = verbAsync(sidecar, ['pause', '--drain-timeout', '120']).then((result) => {
        answered = true;
        return result;
      });
      const clients = await getJson<ClientsView>(sidecar, '/proxy/clients');
      assert.equal(clients.byState.in_unit, 1);
      assert.deepEqual(
        clients.clients.map((client) => client.state),
        ['in_unit'],
      );
      assert.equal(answered, false, 'pause answered while the transaction was open');
      await transaction.commit();
      const result = await pause;
      assert.equal(result.status, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /drained/);
    } finally {
      await session.close();
      await driver.close();
      verb(sidecar, ['resume']);
    }
    const observer = neo4j.driver(server.uri, neo4j.auth.basic(server.username, server.password), QUIET);
    try {
      const { records } = await observer.executeQuery('MATCH (n:MaintenanceProbe) RETURN count(n) AS n');
      assert.equal(records[0]?.get('n').toNumber(), 1);
    } finally {
      await observer.close();
    }
  });
});

describe('a pause left on', { timeout: 5 * 60_000 }, () => {
  let sidecar: SidecarCli;
  before(async () => {
    sidecar = await startSidecar({ SIDECAR__PROXY__POOLING__MAX_PAUSE_MS: '3000' });
  });
  after(() => sidecar?.stop());

  it('is ended by the maximum: the clients it held go on, and the expiry is counted and logged', async () => {
    const pause = verb(sidecar, ['pause']);
    assert.equal(pause.status, 0, pause.stderr);
    const driver = proxyDriver(sidecar);
    try {
      const held = driver.executeQuery('RETURN 1 AS one');
      await eventually(async () => assert.equal((await getJson<PoolsView>(sidecar, '/proxy/pools')).held, 1), 30_000);
      const { records } = await held;
      assert.equal(records[0]?.get('one').toNumber(), 1);
    } finally {
      await driver.close();
    }
    const pools = await getJson<PoolsView>(sidecar, '/proxy/pools');
    assert.equal(pools.paused, false);
    assert.equal(await metric(sidecar, 'neo4j_proxy_pool_pauses_expired_total'), 1);
    assert.equal(await metric(sidecar, 'neo4j_proxy_pool_holds_total', { reason: 'paused', outcome: 'released' }), 1);
    assert.match(sidecar.logs(), /proxy\.pooling\.maxPauseMs/);
    const resume = verb(sidecar, ['resume']);
    assert.equal(resume.status, 0);
    assert.match(resume.stdout, /not paused: nothing to resume/);
  });

  it('reconnect closes every pooled upstream, and new work opens new ones', async () => {
    const driver = proxyDriver(sidecar);
    try {
      await driver.executeQuery('RETURN 1');
      const before = await metric(sidecar, 'neo4j_proxy_pool_upstreams_closed_total', { reason: 'reconnect' });
      const result = verb(sidecar, ['reconnect', '--json']);
      assert.equal(result.status, 0, result.stderr);
      const { upstreams } = JSON.parse(result.stdout) as { upstreams: number };
      assert.ok(upstreams >= 1, result.stdout);
      await eventually(async () =>
        assert.ok(
          (await metric(sidecar, 'neo4j_proxy_pool_upstreams_closed_total', { reason: 'reconnect' })) >= before + 1,
        ),
      );
      await driver.executeQuery('RETURN 2');
    } finally {
      await driver.close();
    }
  });
});
