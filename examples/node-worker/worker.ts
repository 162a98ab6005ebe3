/**
 * A Node.js job worker with in-process pool metrics: one neo4j-driver Driver for the whole process,
 * instrumented once with instrumentDriver, its metrics served on /metrics for Prometheus.
 *
 * The job source is a stand-in (a timer that enqueues jobs) so the example runs on its own; in a real
 * worker the handler below is what BullMQ, a Kafka consumer or a cron job calls. What matters is the
 * shape: the driver is created once at start-up, every job borrows a pooled connection, and the driver
 * is closed once at shutdown.
 *
 *   NEO4J_URI=bolt://127.0.0.1:7687 NEO4J_PASSWORD=secret npx tsx examples/node-worker/worker.ts
 *
 * Environment: NEO4J_URI, NEO4J_USERNAME (neo4j), NEO4J_PASSWORD, METRICS_PORT (9465; 0 picks a free
 * one), JOBS_PER_SECOND (20), CONCURRENCY (4), STATSD_HOST (unset: no StatsD).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import neo4j from 'neo4j-driver';
// In your project: import { instrumentDriver, PrometheusSink, Recorder, StatsdSink } from 'neo4j-pool-sidecar';
import { instrumentDriver, type MetricSink, PrometheusSink, Recorder, StatsdSink } from '../../src/index.ts';

const env = process.env;
const uri = env.NEO4J_URI ?? 'bolt://127.0.0.1:7687';
const jobsPerSecond = Number(env.JOBS_PER_SECOND ?? 20);
const concurrency = Number(env.CONCURRENCY ?? 4);

// 1. Metrics: one recorder for the process, exported to Prometheus (and StatsD when configured).
const prometheus = new PrometheusSink();
const sinks: MetricSink[] = [prometheus];
if (env.STATSD_HOST) {
  sinks.push(
    new StatsdSink({
      host: env.STATSD_HOST,
      port: Number(env.STATSD_PORT ?? 8125),
      prefix: 'neo4j.',
      tagFormat: 'dogstatsd',
      sampleRate: 1,
      maxBufferSize: 1400,
      flushIntervalMs: 1000,
    }),
  );
}
const recorder = new Recorder({ sinks });

// 2. One driver per worker process, sized for the jobs it runs at once, instrumented once.
const driver = neo4j.driver(uri, neo4j.auth.basic(env.NEO4J_USERNAME ?? 'neo4j', env.NEO4J_PASSWORD ?? ''), {
  maxConnectionPoolSize: concurrency + 2,
  connectionAcquisitionTimeout: 10_000,
  userAgent: 'node-worker-example/1.0',
});
// The pool is reachable once the driver has connected: connecting first lets instrumentDriver see it.
await driver.verifyConnectivity();
const instrumented = instrumentDriver(driver, {
  recorder,
  poolName: 'node-worker',
  onWarning: (message) => console.warn(message),
});

// 3. /metrics for Prometheus.
const server = createServer((request, response) => {
  if (request.url !== '/metrics') {
    response.writeHead(404).end();
    return;
  }
  prometheus
    .render(request.headers.accept?.includes('application/openmetrics-text') ? 'openmetrics' : 'prometheus')
    .then(({ contentType, body }) => response.writeHead(200, { 'content-type': contentType }).end(body))
    .catch((error: unknown) => response.writeHead(500).end(String(error)));
});
await new Promise<void>((listening) =>
  server.listen(Number(env.METRICS_PORT ?? 9465), env.METRICS_HOST ?? '127.0.0.1', listening),
);
const { port } = server.address() as AddressInfo;
console.log(`node-worker: metrics on http://127.0.0.1:${port}/metrics (pool metrics: ${instrumented.poolObserved})`);

// 4. The job handler: a short read per job, on a pooled connection.
async function handleJob(jobId: number): Promise<void> {
  await driver.executeQuery(
    'UNWIND range(1, $size) AS i RETURN $job AS job, sum(i) AS checksum',
    { job: jobId, size: 100 },
    { database: env.NEO4J_DATABASE ?? 'neo4j', routing: neo4j.routing.READ },
  );
}

// A stand-in job source: a queue filled at JOBS_PER_SECOND, drained by CONCURRENCY runners.
const queue: number[] = [];
let nextJob = 0;
let completed = 0;
let failed = 0;
let stopping = false;
const producer = setInterval(() => queue.push(nextJob++), 1000 / jobsPerSecond);
const runners = Array.from({ length: concurrency }, async () => {
  while (!stopping) {
    const job = queue.shift();
    if (job === undefined) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      continue;
    }
    try {
      await handleJob(job);
      completed++;
    } catch (error) {
      failed++;
      console.error(`job ${job} failed: ${(error as Error).message}`);
    }
  }
});

// 5. Shutdown: stop taking jobs, let running ones finish, then close the driver once.
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(producer);
  await Promise.all(runners);
  await driver.close();
  await recorder.close();
  server.close();
  console.log(`node-worker: ${signal}, stopped after ${completed} jobs (${failed} failed)`);
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));
