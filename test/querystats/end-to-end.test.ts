/**
 * Query statistics against the real Neo4j: the JavaScript driver through the proxy and instrumented
 * in-process, and the Python driver through the proxy, run known workloads; /queries must report
 * exactly what each client did, per fingerprint, with one fingerprint for the same query from both
 * sources. A canary written as a string literal must reach no output, and the HTTP surface must
 * validate its inputs.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import neo4j, { type Driver } from 'neo4j-driver';
import { ensurePythonClient } from '../../scripts/clients/python.ts';
import { instrumentDriver } from '../../src/instrument/index.ts';
import { createLogger } from '../../src/logger.ts';
import { isBoltProxyComponent } from '../../src/proxy/index.ts';
import { fingerprint, type QueryStatsRow, type QueryStatsSnapshot } from '../../src/querystats/index.ts';
import type { RunningSidecar } from '../../src/server/index.ts';
import { eventually } from '../support/eventually.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { startTestSidecar } from '../support/sidecar.ts';

const run = promisify(execFile);
const CANARY = 'canary-literal-5d1e7a90c3';

let neo4jServer: TestNeo4j;
let sidecar: RunningSidecar;
let base: string;
let statsd: { socket: Socket; lines: string[] };
const logLines: string[] = [];

before(async () => {
  neo4jServer = await sharedNeo4j();
  const socket = createSocket('udp4');
  const lines: string[] = [];
  socket.on('message', (packet) => lines.push(packet.toString()));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  statsd = { socket, lines };
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => logLines.push(chunk.toString()));
  sidecar = await startTestSidecar({
    neo4j: neo4jServer,
    env: {
      SIDECAR__QUERY_STATS__METADATA_KEY: 'task',
      // On here so the canary check covers the normalised text in /metrics as well.
      SIDECAR__QUERY_STATS__EXPORT_TEXT: 'true',
      SIDECAR__STATSD__ENABLED: 'true',
      SIDECAR__STATSD__PORT: String(socket.address().port),
      SIDECAR__STATSD__FLUSH_INTERVAL_MS: '100',
    },
    logger: createLogger({ level: 'trace', pretty: 'never', destination: stream }),
  });
  base = `http://127.0.0.1:${sidecar.httpAddress.port}`;
});

after(async () => {
  await sidecar?.stop();
  statsd?.socket.close();
  await releaseSharedNeo4j();
});

function proxyUri(): string {
  const component = sidecar.components.find(isBoltProxyComponent);
  assert.ok(component?.proxy, 'the proxy component runs');
  return `bolt://${component.proxy.address}`;
}

async function queries(query = 'limit=1000'): Promise<QueryStatsSnapshot> {
  const response = await fetch(`${base}/queries?${query}`);
  const body = await response.text();
  assert.equal(response.status, 200, body);
  return JSON.parse(body) as QueryStatsSnapshot;
}

function rowsOf(snapshot: QueryStatsSnapshot, text: string): QueryStatsRow[] {
  const id = fingerprint(text).id;
  const rows = snapshot.queries.filter((candidate) => candidate.id === id);
  assert.ok(rows.length > 0, `no row for ${text} (${id})`);
  return rows;
}

function rowOf(snapshot: QueryStatsSnapshot, text: string): QueryStatsRow {
  const id = fingerprint(text).id;
  const row = snapshot.queries.find((candidate) => candidate.id === id);
  assert.ok(row, `no row for ${text} (${id}) in ${JSON.stringify(snapshot.queries.map((q) => q.query))}`);
  return row;
}

/** Sum of the /metrics samples of `name` carrying every label given (Prometheus text format). */
async function metricSum(name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    const match = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (match?.[1] !== name) continue;
    const pairs = match[2] ?? '';
    if (Object.entries(labels).every(([key, value]) => pairs.includes(`${key}="${value}"`))) total += Number(match[3]);
  }
  return total;
}

/** `calls` successful three-row queries and `failures` failing ones, each with its own literal values. */
async function jsWorkload(driver: Driver, tag: string, calls: number, failures: number): Promise<void> {
  for (let i = 0; i < calls; i++) {
    const { records } = await driver.executeQuery(
      `UNWIND [${i}, ${i + 1}, ${i + 2}] AS x RETURN x AS ${tag}`,
      {},
      { transactionConfig: { metadata: { task: `${tag}-task` } } },
    );
    assert.equal(records.length, 3);
  }
  const session = driver.session();
  try {
    for (let i = 0; i < failures; i++) {
      await assert.rejects(session.run(`RETURN ${i + 1} / 0 AS ${tag}Failing`));
    }
  } finally {
    await session.close();
  }
}

describe('query statistics against the real Neo4j', { timeout: 5 * 60_000 }, () => {
  it('count calls, errors and rows per fingerprint as the JavaScript driver ran them, through the proxy and in-process', async () => {
    const viaProxy = neo4j.driver(proxyUri(), neo4j.auth.basic('neo4j', neo4jServer.password));
    const inProcess = neo4j.driver(neo4jServer.uri, neo4j.auth.basic('neo4j', neo4jServer.password));
    const instrumented = instrumentDriver(inProcess, {
      recorder: sidecar.recorder,
      poolName: 'test',
      source: 'worker',
    });
    try {
      await jsWorkload(viaProxy, 'js', 5, 2);
      await jsWorkload(inProcess, 'js', 4, 1);
    } finally {
      instrumented.detach();
      await viaProxy.close();
      await inProcess.close();
    }
    const snapshot = await queries();
    const row = rowOf(snapshot, 'UNWIND [1, 2, 3] AS x RETURN x AS js');
    assert.equal(row.query, 'UNWIND ? AS x RETURN x AS js');
    assert.equal(row.calls, 9, 'one fingerprint for both sources');
    assert.equal(row.records, 27);
    assert.equal(row.errors, 0);
    assert.equal(row.clients.worker, 4, 'in-process calls under the source name');
    assert.equal(
      row.clients['neo4j-javascript/6'] ?? row.clients.other,
      5,
      `proxy calls: ${JSON.stringify(row.clients)}`,
    );
    assert.deepEqual(row.attribution, { 'js-task': 9 }, 'tx_metadata task from both sources');
    assert.equal(row.mode, 'write');
    assert.ok(row.totalSeconds > 0 && row.maxSeconds >= row.p50Seconds);

    // A failed RUN carries no database in its reply: both sources list it under the home database the
    // same user's successful queries ran on, so it is one row beside its successful twin's database.
    const failing = rowsOf(snapshot, 'RETURN 1 / 0 AS jsFailing');
    assert.deepEqual(
      failing.map((failed) => failed.database),
      [row.database],
    );
    assert.equal(row.database, 'neo4j');
    const sum = (field: 'calls' | 'errors' | 'records') => failing.reduce((total, row) => total + row[field], 0);
    assert.equal(sum('calls'), 3, JSON.stringify(failing));
    assert.equal(sum('errors'), 3);
    assert.equal(sum('records'), 0);
    const codes = failing.flatMap((row) => Object.entries(row.errorsByCode));
    assert.equal(
      codes.reduce((total, [, count]) => total + count, 0),
      3,
    );
    assert.ok(
      codes.every(([code]) => code === 'Neo.ClientError.Statement.ArithmeticError'),
      JSON.stringify(codes),
    );
  });

  it('list a failing query that names no database under the database its succeeding twin ran on, per-task connections included', async () => {
    const auth = neo4j.auth.basic('neo4j', neo4jServer.password);
    const arithmetic = { database: 'neo4j', code: 'Neo.ClientError.Statement.ArithmeticError' };
    const errorsBefore = {
      proxy: await metricSum('neo4j_query_errors_total', { source: 'proxy', ...arithmetic }),
      worker: await metricSum('neo4j_query_errors_total', { source: 'home-worker', ...arithmetic }),
    };
    // Per-task drivers through the proxy, one connection each: one task's only query succeeds, then
    // three tasks' only query fails, which Neo4j answers with a FAILURE naming no database.
    const perTask = async (work: (driver: Driver) => Promise<void>) => {
      const driver = neo4j.driver(proxyUri(), auth);
      try {
        await work(driver);
      } finally {
        await driver.close();
      }
    };
    const failOnce = async (driver: Driver) => {
      const session = driver.session();
      try {
        await assert.rejects(session.run('RETURN 7 / 0 AS homeTwin'));
      } finally {
        await session.close();
      }
    };
    await perTask(async (driver) => {
      await driver.executeQuery('RETURN 7 AS homeTwin');
    });
    for (let task = 0; task < 3; task++) await perTask(failOnce);
    // In-process, one driver: its query succeeds, then its twin fails.
    const inProcess = neo4j.driver(neo4jServer.uri, auth);
    const instrumented = instrumentDriver(inProcess, {
      recorder: sidecar.recorder,
      poolName: 'home',
      source: 'home-worker',
    });
    try {
      await inProcess.executeQuery('RETURN 7 AS homeTwin');
      await failOnce(inProcess);
    } finally {
      instrumented.detach();
      await inProcess.close();
    }

    const snapshot = await queries();
    const succeeded = rowsOf(snapshot, 'RETURN 7 AS homeTwin');
    const failed = rowsOf(snapshot, 'RETURN 7 / 0 AS homeTwin');
    assert.deepEqual(
      succeeded.map((row) => [row.database, row.calls]),
      [['neo4j', 2]],
    );
    assert.deepEqual(
      failed.map((row) => [row.database, row.calls, row.errors]),
      [['neo4j', 4, 4]],
      'the failures sit beside their successful twin, under the same database',
    );
    assert.equal(
      await metricSum('neo4j_query_errors_total', { source: 'proxy', ...arithmetic }),
      errorsBefore.proxy + 3,
    );
    assert.equal(
      await metricSum('neo4j_query_errors_total', { source: 'home-worker', ...arithmetic }),
      errorsBefore.worker + 1,
    );
    const metricsText = await (await fetch(`${base}/metrics`)).text();
    assert.doesNotMatch(metricsText, /^neo4j_query_\w+\{[^}]*database="default"/m);
  });

  it('count what the Python driver ran through the proxy', async () => {
    const python = await ensurePythonClient();
    const script = `
import sys
from neo4j import GraphDatabase, Query
from neo4j.exceptions import Neo4jError
uri, password = sys.argv[1], sys.argv[2]
with GraphDatabase.driver(uri, auth=("neo4j", password)) as driver:
    with driver.session() as session:
        for i in range(6):
            rows = list(session.run(Query(f"UNWIND [{i}, {i + 1}, {i + 2}] AS x RETURN x AS py", metadata={"task": "py-task"})))
            assert len(rows) == 3
        for i in range(2):
            try:
                session.run(f"RETURN {i + 1} / 0 AS pyFailing").consume()
                raise SystemExit("expected a failure")
            except Neo4jError:
                pass
        def work(tx):
            return list(tx.run("UNWIND [1, 2] AS y RETURN y AS pyManaged"))
        assert len(session.execute_read(work)) == 2
print("done")
`;
    const { stdout } = await run(python, ['-c', script, proxyUri(), neo4jServer.password], { timeout: 120_000 });
    assert.match(stdout, /done/);
    const snapshot = await queries();
    const row = rowOf(snapshot, 'UNWIND [0, 1, 2] AS x RETURN x AS py');
    assert.equal(row.calls, 6);
    assert.equal(row.records, 18);
    assert.deepEqual(row.attribution, { 'py-task': 6 });
    assert.deepEqual(Object.keys(row.clients), ['neo4j-python/5']);
    const failing = rowOf(snapshot, 'RETURN 1 / 0 AS pyFailing');
    assert.equal(failing.calls, 2);
    assert.equal(failing.errors, 2);
    assert.deepEqual(failing.errorsByCode, { 'Neo.ClientError.Statement.ArithmeticError': 2 });
    const managed = rowOf(snapshot, 'UNWIND [1, 2] AS y RETURN y AS pyManaged');
    assert.equal(managed.calls, 1);
    assert.equal(managed.records, 2);
    assert.equal(managed.mode, 'read');
  });

  it('export the top fingerprints to Prometheus and StatsD by id, and a literal canary nowhere', async () => {
    const viaProxy = neo4j.driver(proxyUri(), neo4j.auth.basic('neo4j', neo4jServer.password));
    const inProcess = neo4j.driver(neo4jServer.uri, neo4j.auth.basic('neo4j', neo4jServer.password));
    const instrumented = instrumentDriver(inProcess, { recorder: sidecar.recorder, poolName: 'canary' });
    try {
      for (const driver of [viaProxy, inProcess]) {
        await driver.executeQuery(`MATCH (n:CanaryLabel {secret: '${CANARY}'}) RETURN n`);
        await driver.executeQuery(`RETURN "${CANARY}" AS value, ['${CANARY}', 1] AS list`);
        await assert.rejects(driver.executeQuery(`RETURN date('${CANARY}') AS d`));
      }
    } finally {
      instrumented.detach();
      await viaProxy.close();
      await inProcess.close();
    }
    await sidecar.recorder.flush();
    // The flushed datagrams may still be on their way to this process.
    await eventually(() => assert.match(statsd.lines.join('\n'), /query\.fingerprint\.calls/), 30_000);

    const outputs: Record<string, string> = {
      queries: await (await fetch(`${base}/queries?limit=1000`)).text(),
      status: await (await fetch(`${base}/status`)).text(),
      metrics: await (await fetch(`${base}/metrics`)).text(),
      statsd: statsd.lines.join('\n'),
      logs: logLines.join(''),
    };
    // Not vacuous: the canary queries are there, by fingerprint.
    const canaryId = fingerprint(`MATCH (n:CanaryLabel {secret: 'x'}) RETURN n`).id;
    assert.ok(outputs.queries?.includes(canaryId));
    assert.ok(outputs.queries?.includes('MATCH (n:CanaryLabel {secret: ?}) RETURN n'));
    assert.match(outputs.status ?? '', /"queries":\{"since"/);
    assert.match(outputs.metrics ?? '', new RegExp(`neo4j_query_fingerprint_calls_total\\{query_id="${canaryId}"`));
    assert.match(outputs.metrics ?? '', /neo4j_query_fingerprint_info\{query_id="[0-9a-f]{16}",query="/);
    assert.match(outputs.statsd ?? '', /query\.fingerprint\.calls/);
    for (const [where, text] of Object.entries(outputs)) {
      assert.ok(!text.includes(CANARY), `the canary reached ${where}`);
    }
  });

  it('validate sort and limit, and reset on request', async () => {
    for (const bad of ['limit=0', 'limit=abc', 'limit=1001', 'sort=fastest']) {
      const response = await fetch(`${base}/queries?${bad}`);
      assert.equal(response.status, 400, bad);
      const body = (await response.json()) as { message: string };
      assert.match(body.message, /limit|sort/, `${bad}: ${body.message}`);
    }
    const sorted = await queries('limit=1000&sort=errors');
    assert.ok(sorted.queries[0]!.errors >= sorted.queries[1]!.errors);
    assert.equal((await queries('limit=2')).queries.length <= 2, true);

    const reset = await fetch(`${base}/queries/reset`, { method: 'POST' });
    assert.equal(reset.status, 200);
    const after = await queries();
    assert.ok(!after.queries.some((row) => row.query.includes('AS js')), 'earlier statistics are gone');
    assert.equal(after.since, ((await reset.json()) as { since: string }).since);
  });
});

describe('query statistics switched off', { timeout: 2 * 60_000 }, () => {
  it('answer 404 with the reason, leave /status and /metrics without them, and still proxy queries', async () => {
    const off = await startTestSidecar({ neo4j: neo4jServer, env: { SIDECAR__QUERY_STATS__ENABLED: 'false' } });
    try {
      const component = off.components.find(isBoltProxyComponent);
      assert.ok(component?.proxy);
      const driver = neo4j.driver(`bolt://${component.proxy.address}`, neo4j.auth.basic('neo4j', neo4jServer.password));
      try {
        await driver.executeQuery('RETURN 1 AS off');
      } finally {
        await driver.close();
      }
      const url = `http://127.0.0.1:${off.httpAddress.port}`;
      for (const [method, path] of [
        ['GET', '/queries'],
        ['POST', '/queries/reset'],
      ] as const) {
        const response = await fetch(`${url}${path}`, { method });
        assert.equal(response.status, 404, `${method} ${path}`);
        assert.match(((await response.json()) as { message: string }).message, /queryStats\.enabled: false/);
      }
      const status = (await (await fetch(`${url}/status`)).json()) as Record<string, unknown>;
      assert.equal(status.queries, undefined);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      assert.match(metrics, /neo4j_query_duration_seconds_count\{source="proxy"/);
      assert.doesNotMatch(metrics, /neo4j_query_fingerprint_/);
      assert.equal(off.recorder.queryStats, undefined);
    } finally {
      await off.stop();
    }
  });
});
