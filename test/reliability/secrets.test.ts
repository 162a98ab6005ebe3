/**
 * Secrets never leave the sidecar: a Neo4j whose password is a canary, a wrong-password login carrying
 * another canary, and queries whose parameters are canaries (one of them echoed back by Neo4j in its
 * error message), run through the proxy and in-process; then every place the sidecar writes to (logs at
 * trace level, /metrics in both formats, /status, /readyz, StatsD over UDP) is searched for them.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import neo4j from 'neo4j-driver';
import { type LocalNeo4j, startLocalNeo4j } from '../../scripts/neo4j/local-neo4j.ts';
import { defaultComponents } from '../../src/components.ts';
import { loadConfig } from '../../src/config/index.ts';
import { instrumentDriver } from '../../src/instrument/index.ts';
import { createLogger } from '../../src/logger.ts';
import { isBoltProxyComponent } from '../../src/proxy/index.ts';
import { type RunningSidecar, startSidecar } from '../../src/server/index.ts';
import { eventually } from '../support/eventually.ts';

const CANARY_PASSWORD = 'canary-pw-7f3a91c2e5';
const CANARY_WRONG_PASSWORD = 'canary-wrong-4b8d02f6aa';
const CANARY_PARAMETER = 'canary-param-91e6c3d07b';
const CANARY_ECHOED = 'canary-echo-2c5f8a1e93';
const CANARIES = [CANARY_PASSWORD, CANARY_WRONG_PASSWORD, CANARY_PARAMETER, CANARY_ECHOED];

let server: LocalNeo4j;
let sidecar: RunningSidecar;
let statsd: { socket: Socket; lines: string[] };
const logLines: string[] = [];

before(async () => {
  server = await startLocalNeo4j({ name: 'secrets', password: CANARY_PASSWORD });
  const socket = createSocket('udp4');
  const lines: string[] = [];
  socket.on('message', (packet) => lines.push(packet.toString()));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  statsd = { socket, lines };
  const config = loadConfig({
    env: {
      NEO4J_URI: server.uri,
      NEO4J_PASSWORD: CANARY_PASSWORD,
      SIDECAR__HTTP__PORT: '0',
      SIDECAR__PROXY__PORT: '0',
      SIDECAR__STATSD__ENABLED: 'true',
      SIDECAR__STATSD__PORT: String(socket.address().port),
      SIDECAR__STATSD__FLUSH_INTERVAL_MS: '100',
      SIDECAR__PROBES__SCHEDULE: '* * * * * *',
      SIDECAR__PROBES__TIMEOUT_MS: '300',
      SIDECAR__PROBES__JITTER_MS: '0',
    },
  });
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => logLines.push(chunk.toString()));
  sidecar = await startSidecar(config, {
    logger: createLogger({ level: 'trace', pretty: 'never', destination: stream }),
    components: defaultComponents,
  });
});

after(async () => {
  await sidecar?.stop();
  statsd?.socket.close();
  await server?.destroy();
});

function proxyUri(): string {
  const component = sidecar.components.find(isBoltProxyComponent);
  assert.ok(component?.proxy, 'the proxy component runs');
  return `bolt://${component.proxy.address}`;
}

/** Successful and failing queries, the failing one making Neo4j quote the parameter in its message. */
async function runCanaryWorkload(uri: string, instrument: boolean): Promise<void> {
  const driver = neo4j.driver(uri, neo4j.auth.basic('neo4j', CANARY_PASSWORD), { userAgent: 'canary-worker/1.0' });
  const instrumented = instrument
    ? instrumentDriver(driver, { recorder: sidecar.recorder, poolName: 'canary' })
    : undefined;
  try {
    const { records } = await driver.executeQuery('RETURN $secret AS value', { secret: CANARY_PARAMETER });
    assert.equal(records[0]?.get('value'), CANARY_PARAMETER);
    await assert.rejects(driver.executeQuery('RETURN date($text) AS d', { text: CANARY_ECHOED }), (error: Error) => {
      // The point of this query: Neo4j's own message carries the parameter, so it must not be copied anywhere.
      assert.ok(error.message.includes(CANARY_ECHOED), `Neo4j echoes the parameter: ${error.message}`);
      return true;
    });
  } finally {
    instrumented?.detach();
    await driver.close();
  }
  const wrong = neo4j.driver(uri, neo4j.auth.basic('neo4j', CANARY_WRONG_PASSWORD));
  try {
    await assert.rejects(wrong.executeQuery('RETURN 1'), /authentication|unauthorized/i);
  } finally {
    await wrong.close();
  }
}

describe('canary secrets', () => {
  it('appear in no log line, endpoint or StatsD packet', async () => {
    await runCanaryWorkload(proxyUri(), false);
    await runCanaryWorkload(server.uri, true);
    // At least one scheduled probe run after the workload, so the probes' logging and metrics are part of
    // what is searched.
    const probes = sidecar.components.find((component) => component.name === 'probes');
    assert.ok(probes?.status, 'the sidecar runs its probes');
    const completedRuns = () => (probes.status!() as { completedRuns: number }).completedRuns;
    const runsBefore = completedRuns();
    await eventually(() => assert.ok(completedRuns() > runsBefore, 'a probe run after the workload'), 60_000);
    await sidecar.recorder.flush();
    await eventually(() => assert.match(statsd.lines.join('\n'), /neo4j\.query\.duration/), 30_000);

    const base = `http://127.0.0.1:${sidecar.httpAddress.port}`;
    const outputs: Record<string, string> = {
      metrics: await (await fetch(`${base}/metrics`)).text(),
      openMetrics: await (
        await fetch(`${base}/metrics`, { headers: { accept: 'application/openmetrics-text' } })
      ).text(),
      status: await (await fetch(`${base}/status`)).text(),
      readyz: await (await fetch(`${base}/readyz`)).text(),
      statsd: statsd.lines.join('\n'),
      logs: logLines.join(''),
    };
    // Guard against a vacuous pass: each output must hold what the workload produced.
    assert.match(outputs.metrics ?? '', /neo4j_query_errors_total\{[^}]*source="proxy"/);
    assert.match(outputs.metrics ?? '', /neo4j_proxy_auth_failures_total|reason="auth/);
    assert.match(outputs.statsd ?? '', /neo4j\.query\.duration/);
    assert.match(outputs.status ?? '', /"password":"\*+"/);
    assert.ok((outputs.logs ?? '').length > 0, 'the sidecar logged something');
    for (const [where, text] of Object.entries(outputs)) {
      for (const canary of CANARIES) {
        assert.ok(!text.includes(canary), `${where} contains the canary ${canary}`);
      }
    }
  });
});
