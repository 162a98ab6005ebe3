/**
 * End to end: real Redis, real Neo4j, the sidecar (proxy, probes, alerts) and a real Celery worker
 * running examples/celery. A batch of tasks runs in each pattern, and the sidecar's own metrics must
 * tell them apart: the per-task driver shows short client connections carrying one query each; the
 * worker-level driver shows few long-lived connections carrying many queries.
 *
 * The per-task batch runs twice. With the proxy's default session pooling the churn stays at the
 * proxy: Neo4j sees a handful of reused upstreams, while the churn alert still names the client
 * family from the proxy's connection rate. With pooling off (the thermometer without the cure) every
 * task is a new server connection, and the census counts them.
 *
 * Each run gets a fresh sidecar, so the census's churn rate covers that run alone; the Neo4j server
 * is this file's own, so other test files' connections never count as churn.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { celeryExampleDir, ensureCelery, ensureRedis, type LocalRedis } from '../../scripts/clients/celery.ts';
import { freePort, type LocalNeo4j } from '../../scripts/neo4j/local-neo4j.ts';
import { defaultComponents } from '../../src/components.ts';
import { loadConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/logger.ts';
import { isBoltProxyComponent } from '../../src/proxy/index.ts';
import { fingerprint, type QueryStatsSnapshot } from '../../src/querystats/index.ts';
import { type RunningSidecar, startSidecar } from '../../src/server/index.ts';
import { eventually } from '../support/eventually.ts';
import { privateNeo4j } from '../support/neo4j.ts';
import { type ParsedSample, parseExposition } from '../support/prometheus-text.ts';

const TASKS = 80;
const WORKER_CONCURRENCY = 2;
const CHURN_WARNING_PER_SECOND = 2;
const CHURN_ALERT = 'Neo4jPoolConnectionChurnHigh';
const LIFETIME = 'neo4j_proxy_client_connection_lifetime_seconds';
const QUERIES_PER_CONNECTION = 'neo4j_proxy_queries_per_connection';
/** examples/celery/settings.py's JOB_QUERY, whose literal-free text is its own fingerprint. */
const JOB_QUERY = 'UNWIND range(1, $size) AS i RETURN $job AS job, sum(i) AS checksum';

type Pattern = 'per-task-driver' | 'worker-driver';
const MODULES: Record<Pattern, string> = { 'per-task-driver': 'per_task_driver', 'worker-driver': 'worker_driver' };
/** A batch: the pattern, through the proxy with its default pooling or with pooling off. */
type Run = Pattern | 'per-task-driver-unpooled';

interface PatternRun {
  /** What enqueue.py reported. */
  batch: { tasks: number; succeeded: number; failures: string[]; seconds: number; checksums: number[] };
  /** /metrics once the batch is done and a census and an alert evaluation have seen it; the worker still runs. */
  afterBatch: ParsedSample[];
  /** /metrics after the worker stopped: the proxy records a connection's lifetime and queries when it closes. */
  afterStop: ParsedSample[];
  /** Every value the churn alert's warning gauge took from the sidecar's start until the batch was seen. */
  churnAlertValues: number[];
  /** GET /queries once the batch is done. */
  queries: QueryStatsSnapshot;
}

/**
 * Waits until a census that started after everything so far has completed (the probe run in flight
 * may have taken its census before the last task: two more runs), and then an alert evaluation.
 */
async function censusAndAlertsSawAll(sidecar: RunningSidecar): Promise<void> {
  const status = (name: string) => sidecar.components.find((component) => component.name === name)?.status?.();
  const completedRuns = () => (status('probes') as { completedRuns: number }).completedRuns;
  const runsBefore = completedRuns();
  await eventually(() => assert.ok(completedRuns() >= runsBefore + 2, 'two probe runs since the batch'), 60_000);
  const censusDone = Date.now();
  await eventually(() => {
    const { evaluatedAt } = status('alerts') as { evaluatedAt: string | null };
    assert.ok(evaluatedAt !== null && Date.parse(evaluatedAt) > censusDone, `alerts last evaluated ${evaluatedAt}`);
  }, 60_000);
}

function silentLogger() {
  return createLogger({
    level: 'warn',
    pretty: 'never',
    destination: new Writable({ write: (_chunk, _encoding, done) => done() }),
  });
}

function total(samples: readonly ParsedSample[], name: string, match: (labels: Record<string, string>) => boolean) {
  return samples.filter((sample) => sample.name === name && match(sample.labels)).reduce((sum, s) => sum + s.value, 0);
}

/** Every client: only the Celery workers connect through the proxy (the sidecar's own driver does not). */
const anyClient = () => true;

/** Cumulative count of a histogram at bucket `le`, summed over client families. */
function bucketCount(samples: readonly ParsedSample[], histogram: string, le: string): number {
  return total(samples, `${histogram}_bucket`, (labels) => labels.le === le);
}

async function scrape(sidecar: RunningSidecar): Promise<ParsedSample[]> {
  const response = await fetch(`http://127.0.0.1:${sidecar.httpAddress.port}/metrics`);
  return parseExposition(await response.text()).samples;
}

function churnAlertValue(samples: readonly ParsedSample[]): number {
  return total(
    samples,
    'neo4j_sidecar_alert_active',
    (labels) => labels.alert === CHURN_ALERT && labels.severity === 'warning',
  );
}

async function startCeleryWorker(
  python: string,
  pattern: Pattern,
  env: NodeJS.ProcessEnv,
): Promise<{ stop(): Promise<void>; output(): string }> {
  const child: ChildProcessWithoutNullStreams = spawn(
    python,
    [
      '-m',
      'celery',
      '-A',
      MODULES[pattern],
      'worker',
      '--pool',
      'prefork',
      '--concurrency',
      String(WORKER_CONCURRENCY),
      '--hostname',
      `${pattern}@%h`,
      '--loglevel',
      'INFO',
      '--without-gossip',
      '--without-mingle',
      '--without-heartbeat',
    ],
    { cwd: celeryExampleDir, env },
  );
  let output = '';
  const collect = (chunk: string) => {
    output = (output + chunk).slice(-20_000);
  };
  child.stdout.setEncoding('utf8').on('data', collect);
  child.stderr.setEncoding('utf8').on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 60_000;
  while (!/ready\.\s*$/m.test(output)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      assert.fail(`the Celery worker (${pattern}) did not become ready:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    output: () => output,
    async stop() {
      if (child.exitCode !== null) return;
      // A warm shutdown lets each child process run worker_process_shutdown (closing its driver).
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

describe('the Celery example end to end: the sidecar tells the per-task driver from the worker-level driver', () => {
  let neo4j: LocalNeo4j;
  let redis: LocalRedis;
  let python: string;
  const runs = new Map<Run, PatternRun>();

  async function runPattern(pattern: Pattern, pooling: 'default' | 'off' = 'default'): Promise<PatternRun> {
    const proxyPort = await freePort();
    const config = loadConfig({
      env: {
        NEO4J_URI: neo4j.uri,
        NEO4J_PASSWORD: neo4j.password,
        SIDECAR__HTTP__PORT: '0',
        // Not under test here; and prom-client's event-loop lag gauges read "Nan" until first sampled.
        SIDECAR__METRICS__PROCESS_METRICS: 'false',
        SIDECAR__PROXY__ENABLED: 'true',
        SIDECAR__PROXY__PORT: String(proxyPort),
        ...(pooling === 'off' ? { SIDECAR__PROXY__POOLING__MODE: 'off' } : {}),
        // Short enough to see a batch within seconds; not so short that probes time out on a busy
        // machine, since a timed-out probe replaces its connection and the census would count that too.
        SIDECAR__PROBES__SCHEDULE: '*/2 * * * * *',
        SIDECAR__PROBES__TIMEOUT_MS: '800',
        SIDECAR__PROBES__JITTER_MS: '0',
        SIDECAR__ALERTS__EVALUATION_INTERVAL_SECONDS: '1',
        SIDECAR__ALERTS__THRESHOLDS__CONNECTION_CHURN__WARNING: String(CHURN_WARNING_PER_SECOND),
        SIDECAR__ALERTS__THRESHOLDS__CONNECTION_CHURN__FOR: '0s',
        SIDECAR__ALERTS__THRESHOLDS__CONNECTION_CHURN__WINDOW: '30s',
        // The example's tasks name themselves in tx_metadata.
        SIDECAR__QUERY_STATS__METADATA_KEY: 'task',
      },
    });
    const sidecar = await startSidecar(config, { logger: silentLogger(), components: defaultComponents });
    const churnAlertValues: number[] = [];
    let watching = true;
    const scrapeErrors: string[] = [];
    const watcher = (async () => {
      while (watching) {
        try {
          churnAlertValues.push(churnAlertValue(await scrape(sidecar)));
        } catch (error) {
          scrapeErrors.push(String(error));
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    })();
    try {
      assert.ok(
        sidecar.components.some((component) => component.name === 'proxy'),
        'the sidecar started without its proxy component',
      );
      // The churn rate is taken over the time since the sidecar started (up to the 30 s window):
      // a few seconds of history keep a worker's handful of first connections from reading as churn.
      await new Promise((resolve) => setTimeout(resolve, 5000));
      const env = {
        ...process.env,
        NEO4J_URI: `neo4j://127.0.0.1:${proxyPort}`,
        NEO4J_USERNAME: neo4j.username,
        NEO4J_PASSWORD: neo4j.password,
        CELERY_BROKER_URL: redis.url,
        C_FORCE_ROOT: '1',
      };
      const worker = await startCeleryWorker(python, pattern, env);
      let batch: PatternRun['batch'];
      let afterBatch: ParsedSample[];
      let queries: QueryStatsSnapshot;
      try {
        const { stdout } = await promisify(execFile)(
          python,
          ['enqueue.py', '--pattern', pattern, '--tasks', String(TASKS), '--timeout', '180'],
          { cwd: celeryExampleDir, env, timeout: 200_000 },
        ).catch((error: Error & { stdout?: string; stderr?: string }) => {
          throw new Error(`enqueue.py failed: ${error.message}\n${error.stderr}\nworker:\n${worker.output()}`);
        });
        batch = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as PatternRun['batch'];
        await censusAndAlertsSawAll(sidecar);
        afterBatch = await scrape(sidecar);
        queries = (await (
          await fetch(`http://127.0.0.1:${sidecar.httpAddress.port}/queries?limit=1000`)
        ).json()) as QueryStatsSnapshot;
        // The steady state of each pattern is what the alert must judge; stopping the worker is not part of it.
        watching = false;
        await watcher;
      } finally {
        await worker.stop();
      }
      // The proxy records a connection's lifetime and query count when it closes: wait for the last close.
      const proxy = sidecar.components.find(isBoltProxyComponent)?.proxy;
      await eventually(() => assert.equal(proxy?.activeConnections, 0, 'client connections still open'), 60_000);
      assert.deepEqual(scrapeErrors.slice(0, 3), [], 'every /metrics scrape parsed');
      return { batch, afterBatch, afterStop: await scrape(sidecar), churnAlertValues, queries };
    } finally {
      watching = false;
      await watcher;
      await sidecar.stop();
    }
  }

  before(async () => {
    [neo4j, python, redis] = await Promise.all([privateNeo4j('celery-e2e'), ensureCelery(), ensureRedis()]);
  });

  after(async () => {
    await redis?.stop();
    await neo4j?.destroy();
  });

  // The worker-level pattern runs first, on a server nobody has used yet, so its census counts
  // nothing left over from the per-task batches.
  for (const pattern of ['worker-driver', 'per-task-driver'] as const) {
    it(`runs a batch of ${TASKS} tasks with the ${pattern} pattern through the proxy`, async () => {
      runs.set(pattern, await runPattern(pattern));
      const { batch } = runs.get(pattern)!;
      assert.equal(batch.succeeded, TASKS, `failures: ${batch.failures.join('; ')}`);
      assert.deepEqual(batch.checksums, [5050]);
    });
  }

  it(`runs a batch of ${TASKS} tasks with the per-task-driver pattern through the proxy with pooling off`, async () => {
    runs.set('per-task-driver-unpooled', await runPattern('per-task-driver', 'off'));
    const { batch } = runs.get('per-task-driver-unpooled')!;
    assert.equal(batch.succeeded, TASKS, `failures: ${batch.failures.join('; ')}`);
    assert.deepEqual(batch.checksums, [5050]);
  });

  it('shows the per-task driver as short client connections carrying one query each', () => {
    const run = runs.get('per-task-driver');
    assert.ok(run, 'the per-task batch did not run');
    const samples = run.afterStop;
    const opened = total(samples, 'neo4j_proxy_client_connections_opened_total', anyClient);
    const closedCount = bucketCount(samples, LIFETIME, '+Inf');
    assert.ok(opened >= TASKS, `a connection per task: ${opened} opened for ${TASKS} tasks`);
    assert.ok(closedCount >= TASKS, `${closedCount} client connections closed`);
    const shortLived = bucketCount(samples, LIFETIME, '1');
    assert.ok(shortLived >= 0.9 * closedCount, `${shortLived} of ${closedCount} connections lived under 1 s`);
    const atMostOneQuery = bucketCount(samples, QUERIES_PER_CONNECTION, '1');
    assert.ok(atMostOneQuery >= 0.9 * closedCount, `${atMostOneQuery} of ${closedCount} carried at most one query`);
  });

  it('shows the worker-level driver as few long-lived client connections carrying many queries', () => {
    const run = runs.get('worker-driver');
    assert.ok(run, 'the worker-level batch did not run');
    const samples = run.afterStop;
    const opened = total(samples, 'neo4j_proxy_client_connections_opened_total', anyClient);
    // A routing driver may hold a routing connection beside its query connection.
    assert.ok(opened >= 1 && opened <= 2 * WORKER_CONCURRENCY, `${opened} connections for ${TASKS} tasks`);
    const closedCount = bucketCount(samples, LIFETIME, '+Inf');
    const shortLived = bucketCount(samples, LIFETIME, '1');
    assert.ok(closedCount >= 1, 'the worker closed its connections at shutdown');
    assert.ok(shortLived < closedCount, `${shortLived} of ${closedCount} connections lived under 1 s`);
    const queries = total(samples, `${QUERIES_PER_CONNECTION}_sum`, anyClient);
    assert.ok(queries >= TASKS, `${queries} queries carried`);
    assert.ok(queries / closedCount >= 10, `${(queries / closedCount).toFixed(1)} queries per connection`);
  });

  it('says which task sent the job query, from the tx_metadata the tasks set', () => {
    const id = fingerprint(JOB_QUERY).id;
    for (const [pattern, task] of [
      ['worker-driver', 'worker_driver.run_job'],
      ['per-task-driver', 'per_task_driver.run_job'],
    ] as const) {
      const run = runs.get(pattern);
      assert.ok(run, `the ${pattern} batch did not run`);
      const row = run.queries.queries.find((candidate) => candidate.id === id);
      assert.ok(row, `no statistics for the job query in ${JSON.stringify(run.queries.queries.map((q) => q.query))}`);
      assert.equal(row.calls, TASKS);
      assert.equal(row.records, TASKS, 'one record per job');
      assert.equal(row.errors, 0);
      assert.equal(row.mode, 'read');
      assert.deepEqual(row.attribution, { [task]: TASKS });
      assert.deepEqual(Object.keys(row.clients), ['neo4j-python/5']);
    }
  });

  it('keeps the per-task churn at the proxy with default pooling: Neo4j sees a few reused upstreams', () => {
    const perTask = runs.get('per-task-driver');
    assert.ok(perTask, 'the pooled per-task batch did not run');
    const serverOpened = total(perTask.afterBatch, 'neo4j_census_connections_opened_total', anyClient);
    // Each of the worker's two processes may hold a query and a routing connection at once.
    assert.ok(serverOpened <= 2 * WORKER_CONCURRENCY, `the census saw ${serverOpened} new server connections`);
    const checkouts = (result: string) =>
      total(perTask.afterBatch, 'neo4j_proxy_pool_checkouts_total', (labels) => labels.result === result);
    const lent = checkouts('reused') + checkouts('reauthenticated');
    assert.ok(lent >= TASKS - 2 * WORKER_CONCURRENCY, `${lent} checkouts reused a pooled upstream`);
    assert.ok(checkouts('opened') <= 2 * WORKER_CONCURRENCY, `${checkouts('opened')} upstreams opened`);
    // The churn alert still names the client family from the proxy's client-connection rate: the
    // pattern is in the workers' code even when the pool spares Neo4j the logins.
    assert.ok(
      perTask.churnAlertValues.includes(1),
      `pooled per-task: churn alert ${perTask.churnAlertValues.join(',')}`,
    );
  });

  it('sees the per-task churn on the server (census) with pooling off and fires the churn alert for it, not for the worker-level driver', () => {
    const unpooled = runs.get('per-task-driver-unpooled');
    const workerLevel = runs.get('worker-driver');
    assert.ok(unpooled && workerLevel, 'a batch did not run');
    const unpooledOpened = total(unpooled.afterBatch, 'neo4j_census_connections_opened_total', anyClient);
    const workerOpened = total(workerLevel.afterBatch, 'neo4j_census_connections_opened_total', anyClient);
    assert.ok(unpooledOpened >= TASKS, `the census saw ${unpooledOpened} new connections for ${TASKS} per-task tasks`);
    assert.ok(workerOpened <= 2 * WORKER_CONCURRENCY, `the census saw ${workerOpened} for the worker-level driver`);
    assert.ok(unpooled.churnAlertValues.includes(1), `per-task: churn alert ${unpooled.churnAlertValues.join(',')}`);
    assert.ok(
      workerLevel.churnAlertValues.length > 0 && !workerLevel.churnAlertValues.includes(1),
      `worker-level: churn alert ${workerLevel.churnAlertValues.join(',')}`,
    );
  });
});
