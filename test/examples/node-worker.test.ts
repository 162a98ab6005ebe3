/**
 * examples/node-worker runs as a user would run it, against real Neo4j: its /metrics shows the pool
 * and query metrics of its one instrumented driver, the pool stays small while jobs flow, and SIGTERM
 * stops it cleanly.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { repoRoot } from '../../scripts/neo4j/local-neo4j.ts';
import { releaseSharedNeo4j, sharedNeo4j } from '../support/neo4j.ts';
import { type ParsedSample, parseExposition } from '../support/prometheus-text.ts';

const CONCURRENCY = 3;
const JOBS_TO_SEE = 40;

function sum(samples: readonly ParsedSample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter(
      (sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
    )
    .reduce((total, sample) => total + sample.value, 0);
}

describe('examples/node-worker', () => {
  let worker: ChildProcessWithoutNullStreams;
  let output = '';
  let metricsUrl: string;

  before(async () => {
    const server = await sharedNeo4j();
    worker = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'examples', 'node-worker', 'worker.ts')], {
      env: {
        ...process.env,
        NEO4J_URI: server.uri,
        NEO4J_PASSWORD: server.password,
        METRICS_PORT: '0',
        JOBS_PER_SECOND: '50',
        CONCURRENCY: String(CONCURRENCY),
      },
    });
    worker.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    worker.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    const deadline = Date.now() + 60_000;
    let match: RegExpExecArray | null = null;
    while (!match) {
      match = /metrics on (http:\/\/\S+\/metrics)/.exec(output);
      if (worker.exitCode !== null || Date.now() > deadline) assert.fail(`the worker did not start:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    metricsUrl = match[1]!;
  });

  after(async () => {
    if (worker.exitCode === null) worker.kill('SIGKILL');
    await releaseSharedNeo4j();
  });

  it('exports pool and query metrics of its one driver while jobs run', async () => {
    let samples: ParsedSample[] = [];
    const deadline = Date.now() + 60_000;
    while (sum(samples, 'neo4j_query_duration_seconds_count', { outcome: 'success' }) < JOBS_TO_SEE) {
      assert.ok(Date.now() < deadline, `fewer than ${JOBS_TO_SEE} jobs ran within a minute:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
      samples = parseExposition(await (await fetch(metricsUrl)).text()).samples;
    }
    const pool = { pool: 'node-worker' };
    assert.ok(
      samples.some(
        (sample) => sample.name === 'neo4j_driver_connections_in_use' && sample.labels.pool === 'node-worker',
      ),
    );
    assert.equal(sum(samples, 'neo4j_driver_connections_max', pool), CONCURRENCY + 2);
    // One driver for the whole process: connections are reused, not opened per job.
    const created = sum(samples, 'neo4j_driver_connections_created_total', pool);
    assert.ok(created >= 1 && created <= CONCURRENCY + 2, `connections created: ${created}`);
    assert.ok(sum(samples, 'neo4j_driver_connections_acquisition_seconds_count', pool) >= JOBS_TO_SEE);
    assert.equal(sum(samples, 'neo4j_query_errors_total'), 0);
  });

  it('stops cleanly on SIGTERM, closing the driver', async () => {
    const exited = new Promise<number | null>((resolve) => worker.once('exit', (code) => resolve(code)));
    worker.kill('SIGTERM');
    assert.equal(await exited, 0, output);
    assert.match(output, /SIGTERM, stopped after \d+ jobs \(0 failed\)/);
  });
});
