/**
 * As a user gets it: the real CLI runs the sidecar with its default configuration against the real
 * Neo4j, a worker sends queries through its proxy, and `neo4j-pool-sidecar queries` prints them as a
 * table from the running sidecar: the worker's queries only, never the sidecar's own census,
 * readiness and probe queries, which run all along.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import neo4j from 'neo4j-driver';
import { fingerprint, type QueryStatsSnapshot } from '../../src/querystats/index.ts';
import { runSidecarCli, type SidecarCli, spawnSidecarCli } from '../support/cli.ts';
import { eventually } from '../support/eventually.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { parseExposition } from '../support/prometheus-text.ts';

let server: TestNeo4j;
let sidecar: SidecarCli;

before(async () => {
  server = await sharedNeo4j();
  sidecar = await spawnSidecarCli(['run'], { NEO4J_URI: server.uri, NEO4J_PASSWORD: server.password });
  assert.ok(await sidecar.waitForOk('/healthz'), `the sidecar did not start:\n${sidecar.logs()}`);
});

after(async () => {
  await sidecar?.stop();
  await releaseSharedNeo4j();
});

/** Sum of the samples of `name` in the sidecar's /metrics whose labels include `labels`. */
async function scraped(name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${sidecar.httpUrl}/metrics`)).text();
  return parseExposition(text)
    .samples.filter(
      (sample) =>
        sample.name === name && Object.entries(labels).every(([label, value]) => sample.labels[label] === value),
    )
    .reduce((sum, sample) => sum + sample.value, 0);
}

/** Fingerprint ids of the queries the workers of this file sent through the proxy. */
const workerIds = new Set<string>();

describe('neo4j-pool-sidecar queries', { timeout: 3 * 60_000 }, () => {
  it("lists the workers' queries only: the sidecar's own census, readiness and probe queries stay out", async () => {
    assert.ok(await sidecar.waitForOk('/readyz'), `the probes did not make it ready:\n${sidecar.logs()}`);
    const ownBefore = await scraped('neo4j_query_duration_seconds_count', { source: 'sidecar' });
    const censusBefore = await scraped('neo4j_probe_last_success_timestamp_seconds', { probe: 'census' });
    assert.ok(ownBefore > 0, "sanity: the sidecar's own queries ran before the worker's");
    assert.ok(censusBefore > 0, 'sanity: the census ran before the worker');

    const texts = [
      'MATCH (n:CliWorker) RETURN count(n) AS nodes',
      'RETURN 1 AS worker_ping',
      'UNWIND [1, 2] AS x RETURN x',
    ];
    const driver = neo4j.driver(`bolt://127.0.0.1:${sidecar.proxyPort}`, neo4j.auth.basic('neo4j', server.password));
    let sent = 0;
    try {
      for (let i = 0; i < 79; i++) {
        await driver.executeQuery(texts[i % texts.length]!);
        sent++;
      }
    } finally {
      await driver.close();
    }
    for (const text of texts) workerIds.add(fingerprint(text).id);

    // The census runs again (every 15 s by default) and readiness checks go on while the worker is done.
    await eventually(
      async () => {
        const census = await scraped('neo4j_probe_last_success_timestamp_seconds', { probe: 'census' });
        assert.ok(census > censusBefore, 'the census has run again since the worker started');
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const ownAfter = await scraped('neo4j_query_duration_seconds_count', { source: 'sidecar' });
    assert.ok(ownAfter >= ownBefore + 4, `the sidecar's own queries ran meanwhile (${ownBefore} -> ${ownAfter})`);

    const response = await fetch(`${sidecar.httpUrl}/queries?limit=1000`);
    assert.equal(response.status, 200);
    const snapshot = (await response.json()) as QueryStatsSnapshot;
    assert.deepEqual(
      snapshot.queries.map((row) => row.id).sort(),
      [...workerIds].sort(),
      `/queries lists exactly the worker's fingerprints:\n${snapshot.queries.map((row) => row.query).join('\n')}`,
    );
    assert.equal(snapshot.totalCalls, sent, "every call counted is the worker's");

    const result = runSidecarCli(['queries', '--url', sidecar.httpUrl, '--limit', '50']);
    assert.equal(result.status, 0, result.stderr);
    const rows = result.stdout.split('\n').filter((line) => /^\s*[0-9a-f]{8,}\s+\|/.test(line));
    assert.deepEqual(
      rows.map((line) => line.split('|')[0]!.trim()).sort(),
      [...workerIds].sort(),
      `the CLI prints exactly the worker's fingerprints:\n${result.stdout}`,
    );
    for (const own of ['SHOW TRANSACTIONS', 'SHOW CURRENT USER', 'listConnections', 'readiness']) {
      assert.ok(!result.stdout.includes(own), `${own} is the sidecar's own query:\n${result.stdout}`);
    }
  });

  it('prints the statistics of a running sidecar with default configuration as a table', async () => {
    const driver = neo4j.driver(`bolt://127.0.0.1:${sidecar.proxyPort}`, neo4j.auth.basic('neo4j', server.password));
    try {
      for (let i = 0; i < 3; i++) {
        await driver.executeQuery(`UNWIND range(1, ${i + 2}) AS x RETURN x, 'cli-${i}' AS tag`);
      }
    } finally {
      await driver.close();
    }
    const id = fingerprint(`UNWIND range(1, 2) AS x RETURN x, 'a' AS tag`).id;
    workerIds.add(id);

    const result = runSidecarCli(['queries', '--url', sidecar.httpUrl, '--sort', 'calls', '--limit', '50']);
    assert.equal(result.status, 0, result.stderr);
    const lines = result.stdout.split('\n');
    const header = lines.findIndex((line) => /^\s+id\s+\|\s+database\s+\|\s+calls\s+\|/.test(line));
    assert.ok(header > 0, `no table header in:\n${result.stdout}`);
    assert.match(lines[header + 1]!, /^-+(\+-+)+$/);
    const row = lines.find((line) => line.includes(id));
    assert.ok(row, `no row for ${id} in:\n${result.stdout}`);
    const cells = row.split('|').map((cell) => cell.trim());
    assert.equal(cells[1], 'neo4j');
    assert.equal(cells[2], '3', 'calls');
    assert.equal(cells[8], '9', 'rows streamed: 2 + 3 + 4');
    assert.equal(cells[10], 'UNWIND range(?, ?) AS x RETURN x, ? AS tag');
    assert.match(result.stdout, /^\(\d+ rows?\)$/m);
    assert.ok(!result.stdout.includes('cli-0'), 'literal values are not printed');

    // Without --url it reads the sidecar the configuration describes.
    const fromConfig = runSidecarCli(['queries'], { SIDECAR__HTTP__PORT: String(sidecar.httpPort) });
    assert.equal(fromConfig.status, 0, fromConfig.stderr);
    assert.ok(fromConfig.stdout.includes(id));
  });

  it('refuses bad options with exit 2 and an unreachable sidecar with exit 1, saying why', async () => {
    const badLimit = runSidecarCli(['queries', '--limit', '0']);
    assert.equal(badLimit.status, 2);
    assert.match(badLimit.stderr, /--limit must be an integer/);
    const badSort = runSidecarCli(['queries', '--sort=slowest']);
    assert.equal(badSort.status, 2);
    assert.match(badSort.stderr, /--sort must be one of total, mean, calls, errors/);
    const unknown = runSidecarCli(['queries', '--frobnicate']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown option --frobnicate/);
    const unreachable = runSidecarCli(['queries', '--url', 'http://127.0.0.1:1']);
    assert.equal(unreachable.status, 1);
    assert.match(unreachable.stderr, /could not read query statistics from http:\/\/127\.0\.0\.1:1/);
  });
});
