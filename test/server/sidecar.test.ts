import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/logger.ts';
import { type RunningSidecar, startSidecar } from '../../src/server/index.ts';
import { privateNeo4j, releaseSharedNeo4j, sharedNeo4j } from '../support/neo4j.ts';
import { parseExposition } from '../support/prometheus-text.ts';

function captureLogs() {
  const stream = new PassThrough();
  const lines: string[] = [];
  stream.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)));
  return { logger: createLogger({ level: 'debug', pretty: 'never', destination: stream }), lines };
}

async function start(uri: string, password: string, extraEnv: Record<string, string> = {}) {
  const config = loadConfig({
    env: {
      NEO4J_URI: uri,
      NEO4J_PASSWORD: password,
      SIDECAR__HTTP__PORT: '0',
      SIDECAR__PROXY__ENABLED: 'false',
      SIDECAR__NEO4J__CONNECTION_TIMEOUT_MS: '2000',
      ...extraEnv,
    },
  });
  const logs = captureLogs();
  const sidecar = await startSidecar(config, { logger: logs.logger });
  const base = `http://127.0.0.1:${sidecar.httpAddress.port}`;
  return { sidecar, base, logs };
}

/** /readyz until it answers `status` (it follows background checks), or its last answer after 60 s. */
async function readyzUntil(base: string, status: number): Promise<Response> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const response = await fetch(`${base}/readyz`);
    if (response.status === status || Date.now() > deadline) return response;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('the sidecar HTTP endpoints', () => {
  let sidecar: RunningSidecar;
  let base: string;
  let password: string;
  let logLines: string[];

  before(async () => {
    const server = await sharedNeo4j();
    password = server.password;
    ({
      sidecar,
      base,
      logs: { lines: logLines },
    } = await start(server.uri, server.password));
  });
  after(async () => {
    await sidecar.stop();
    await releaseSharedNeo4j();
  });

  it('listens on loopback by default', () => {
    assert.equal(sidecar.httpAddress.address, '127.0.0.1');
  });

  it('serves /metrics in the Prometheus text format with live pool metrics', async () => {
    assert.equal((await readyzUntil(base, 200)).status, 200);
    const response = await fetch(`${base}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const parsed = parseExposition(await response.text());
    assert.equal(parsed.types.get('neo4j_driver_connections_in_use'), 'gauge');
    assert.equal(parsed.types.get('neo4j_driver_connections_created_total'), 'counter');
    const max = parsed.samples.find(
      (sample) => sample.name === 'neo4j_driver_connections_max' && sample.labels.pool === 'sidecar',
    );
    assert.equal(max?.value, 5);
    assert.ok(parsed.samples.some((sample) => sample.name === 'neo4j_sidecar_build_info' && sample.value === 1));
    assert.ok(parsed.samples.some((sample) => sample.name === 'neo4j_sidecar_process_resident_memory_bytes'));
  });

  it('serves OpenMetrics when asked, without breaking the Prometheus format afterwards', async () => {
    const openMetrics = await fetch(`${base}/metrics`, { headers: { accept: 'application/openmetrics-text' } });
    assert.match(openMetrics.headers.get('content-type') ?? '', /^application\/openmetrics-text/);
    const parsed = parseExposition(await openMetrics.text(), { openMetrics: true });
    assert.equal(parsed.types.get('neo4j_driver_connections_created'), 'counter');
    assert.ok(parsed.samples.some((sample) => sample.name === 'neo4j_driver_connections_created_total'));
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.match(text, /^# TYPE neo4j_driver_connections_created_total counter$/m);
  });

  it('answers /healthz and /status, with secrets masked', async () => {
    assert.deepEqual(await (await fetch(`${base}/healthz`)).json(), { status: 'ok' });
    const statusText = await (await fetch(`${base}/status`)).text();
    const status = JSON.parse(statusText) as { pools: Array<{ pool: string; max: number }>; config: unknown };
    assert.ok(status.pools.some((pool) => pool.pool === 'sidecar' && pool.max === 5));
    assert.ok(!statusText.includes(password), '/status must not contain the password');
    assert.ok(!logLines.join('\n').includes(password), 'logs must not contain the password');
  });

  it('answers unknown routes and methods with 404 and a reason', async () => {
    const missing = await fetch(`${base}/nope`);
    assert.equal(missing.status, 404);
    assert.match(((await missing.json()) as { message: string }).message, /not found/);
    assert.equal((await fetch(`${base}/metrics`, { method: 'DELETE' })).status, 404);
  });
});

describe('readiness follows the Neo4j server', () => {
  it('is 503 with a reason while the server is stopped, and recovers without a restart', async () => {
    const server = await privateNeo4j('readyz');
    const { sidecar, base } = await start(server.uri, server.password);
    try {
      assert.equal((await readyzUntil(base, 200)).status, 200);
      await server.stop();
      // Readiness follows the background check of Neo4j, which runs every 2 s.
      const notReady = await readyzUntil(base, 503);
      assert.equal(notReady.status, 503);
      const body = (await notReady.json()) as { ready: boolean; reason: string };
      assert.equal(body.ready, false);
      assert.match(body.reason, /neo4j: Neo4j not reachable/);
      assert.equal((await fetch(`${base}/healthz`)).status, 200, 'liveness must not depend on Neo4j');
      await server.start();
      assert.equal((await readyzUntil(base, 200)).status, 200);
    } finally {
      await sidecar.stop();
      await server.destroy();
    }
  });
});
