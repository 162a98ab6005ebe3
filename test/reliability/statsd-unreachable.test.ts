/**
 * A StatsD agent that is not there (nothing listening on its port, or a host name that does not
 * resolve) must cost the workers nothing: queries through the proxy and in-process all complete, the
 * event loop stays responsive, the sidecar keeps serving /metrics, and the failed sends are counted.
 */
import assert from 'node:assert/strict';
import { lookup } from 'node:dns/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import neo4j from 'neo4j-driver';
import { freePort } from '../../scripts/neo4j/local-neo4j.ts';
import { instrumentDriver } from '../../src/instrument/index.ts';
import { createLogger } from '../../src/logger.ts';
import { isBoltProxyComponent, proxyComponent } from '../../src/proxy/index.ts';
import { metricValue } from '../support/metrics.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { startTestSidecar } from '../support/sidecar.ts';

const QUERIES = 200;
/**
 * Far above a healthy event-loop stall; a blocking send would exceed it once per send. Judged on the
 * 99th percentile, so a blocking send (one per packet, hundreds of them) still fails the test while a
 * moment the loaded machine keeps this process off the CPU (once or twice a run) does not.
 */
const EVENT_LOOP_STALL_LIMIT_MS = 1000;
/** A lookup of localhost takes about a millisecond; starved by queued StatsD lookups it took 112 s. */
const LOOKUP_LIMIT_MS = 5000;

let server: TestNeo4j;
before(async () => {
  server = await sharedNeo4j();
});
after(async () => {
  await releaseSharedNeo4j();
});

async function runAgainstUnreachableStatsd(host: string, port: number) {
  const logLines: string[] = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => logLines.push(chunk.toString()));
  const sidecar = await startTestSidecar({
    neo4j: server,
    env: {
      SIDECAR__PROBES__ENABLED: 'false',
      SIDECAR__STATSD__ENABLED: 'true',
      SIDECAR__STATSD__HOST: host,
      SIDECAR__STATSD__PORT: String(port),
      SIDECAR__STATSD__FLUSH_INTERVAL_MS: '50',
      // Every metric its own packet: the most sends, so the most chances to block or fail.
      SIDECAR__STATSD__MAX_BUFFER_SIZE: '0',
    },
    logger: createLogger({ level: 'warn', pretty: 'never', destination: stream }),
    components: [proxyComponent],
  });
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  try {
    const proxy = sidecar.components.find(isBoltProxyComponent)?.proxy;
    assert.ok(proxy);
    const viaProxy = neo4j.driver(`bolt://${proxy.address}`, neo4j.auth.basic(server.username, server.password));
    const direct = neo4j.driver(server.uri, neo4j.auth.basic(server.username, server.password));
    const instrumented = instrumentDriver(direct, { recorder: sidecar.recorder, poolName: 'worker' });
    try {
      for (let index = 0; index < QUERIES; index++) {
        const driver = index % 2 === 0 ? viaProxy : direct;
        const { records } = await driver.executeQuery('RETURN $i AS i', { i: index });
        assert.equal(Number(records[0]?.get('i')), index);
      }
      // Several flush intervals with sends outstanding.
      await new Promise((resolve) => setTimeout(resolve, 500));
      await sidecar.recorder.flush();
      await new Promise((resolve) => setTimeout(resolve, 200));
      // Name lookups share libuv's four threads with file access: one per StatsD packet used to queue up
      // behind each other without bound, so the process's next lookup waited minutes.
      const lookupStarted = performance.now();
      await lookup('localhost');
      const lookupMs = performance.now() - lookupStarted;
      assert.ok(lookupMs < LOOKUP_LIMIT_MS, `a localhost lookup waited ${lookupMs.toFixed(0)} ms`);
      const metrics = await fetch(`http://127.0.0.1:${sidecar.httpAddress.port}/metrics`);
      assert.equal(metrics.status, 200);
    } finally {
      instrumented.detach();
      await Promise.all([viaProxy.close(), direct.close()]);
    }
    loop.disable();
    const p99StallMs = loop.percentile(99) / 1e6;
    assert.ok(
      p99StallMs < EVENT_LOOP_STALL_LIMIT_MS,
      `event loop stalls: 99th percentile ${p99StallMs.toFixed(0)} ms, longest ${(loop.max / 1e6).toFixed(0)} ms`,
    );
    const queries = await metricValue(sidecar.prometheus.registry, 'neo4j_query_duration_seconds_count', {
      outcome: 'success',
    });
    assert.ok(queries >= QUERIES, `${queries} queries recorded`);
    const sendErrors = await metricValue(sidecar.prometheus.registry, 'neo4j_sidecar_statsd_send_errors_total');
    return { sendErrors, logLines };
  } finally {
    loop.disable();
    await sidecar.stop();
  }
}

describe('an unreachable StatsD agent', () => {
  it('a host name that does not resolve: queries complete, nothing blocks, send errors are counted and logged', async () => {
    const { sendErrors, logLines } = await runAgainstUnreachableStatsd('statsd.invalid', 8125);
    assert.ok(sendErrors > 0, 'send errors counted');
    assert.ok(
      logLines.some((line) => line.includes('StatsD send failed')),
      'logged',
    );
    // Rate-limited: one line per minute, however many sends fail.
    assert.equal(logLines.filter((line) => line.includes('StatsD send failed')).length, 1);
  });

  it('a port nothing listens on: queries complete and nothing blocks', async () => {
    // UDP to a closed port on an unconnected socket reports nothing back, so errors are not required here.
    await runAgainstUnreachableStatsd('127.0.0.1', await freePort());
  });
});
