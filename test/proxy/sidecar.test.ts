/**
 * The proxy as part of the running sidecar, end to end: a plain Python worker on the official driver,
 * its NEO4J_URI pointed at the proxy and nothing else changed, and its queries, error and connections
 * then read back from /metrics and from StatsD over UDP, with the proxy in /status and /readyz.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ensurePythonClient } from '../../scripts/clients/python.ts';
import { createLogger } from '../../src/logger.ts';
import { isBoltProxyComponent, proxyComponent } from '../../src/proxy/index.ts';
import type { RunningSidecar } from '../../src/server/index.ts';
import { eventually } from '../support/eventually.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { type ParsedSample, parseExposition } from '../support/prometheus-text.ts';
import { startTestSidecar } from '../support/sidecar.ts';

const execFileAsync = promisify(execFile);

/** A job worker as people write them: the driver, the env, a few queries; nothing sidecar-specific. */
const PYTHON_WORKER = `
import os
from neo4j import GraphDatabase
from neo4j.exceptions import CypherSyntaxError

with GraphDatabase.driver(os.environ["NEO4J_URI"], auth=(os.environ["NEO4J_USERNAME"], os.environ["NEO4J_PASSWORD"])) as driver:
    records, summary, _ = driver.execute_query("UNWIND range(1, 10) AS i RETURN i", routing_="r")
    print("rows", len(records), "server", summary.server.address)
    with driver.session() as session:
        session.execute_write(lambda tx: tx.run("RETURN 1").consume())
    try:
        driver.execute_query("RETURN 1 +")
    except CypherSyntaxError as error:
        print("error", error.code)
`;

let server: TestNeo4j;
let sidecar: RunningSidecar;
let statsd: { socket: Socket; lines: string[] };
let workDir: string;

before(async () => {
  server = await sharedNeo4j();
  const socket = createSocket('udp4');
  const lines: string[] = [];
  socket.on('message', (packet) => lines.push(...packet.toString().split('\n').filter(Boolean)));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  statsd = { socket, lines };
  sidecar = await startTestSidecar({
    neo4j: server,
    env: {
      SIDECAR__STATSD__ENABLED: 'true',
      SIDECAR__STATSD__PORT: String(socket.address().port),
      SIDECAR__STATSD__FLUSH_INTERVAL_MS: '100',
    },
    logger: createLogger({ level: 'error', pretty: 'never' }),
    components: [proxyComponent],
  });
  workDir = mkdtempSync(join(tmpdir(), 'proxy-sidecar-'));
});

after(async () => {
  await sidecar?.stop();
  statsd?.socket.close();
  rmSync(workDir, { recursive: true, force: true });
  await releaseSharedNeo4j();
});

function proxyAddress(): string {
  const component = sidecar.components.find(isBoltProxyComponent);
  assert.ok(component?.proxy, 'the proxy component runs');
  return component.proxy.address;
}

function sample(samples: ParsedSample[], name: string, labels: Record<string, string>): number {
  return samples
    .filter((candidate) => candidate.name === name)
    .filter((candidate) => Object.entries(labels).every(([key, value]) => candidate.labels[key] === value))
    .reduce((sum, candidate) => sum + candidate.value, 0);
}

describe('a Python worker pointed at the sidecar proxy', () => {
  it('runs unchanged, and its queries, error and connections show in /metrics and StatsD', async () => {
    const python = await ensurePythonClient();
    const script = join(workDir, 'worker.py');
    writeFileSync(script, PYTHON_WORKER);
    const { stdout } = await execFileAsync(python, [script], {
      env: {
        ...process.env,
        NEO4J_URI: `neo4j://${proxyAddress()}`,
        NEO4J_USERNAME: server.username,
        NEO4J_PASSWORD: server.password,
      },
      timeout: 60_000,
    });
    assert.match(stdout, new RegExp(`^rows 10 server ${proxyAddress().replace(/\./g, '\\.')}$`, 'm'));
    assert.match(stdout, /^error Neo\.ClientError\.Statement\.SyntaxError$/m);

    const base = `http://127.0.0.1:${sidecar.httpAddress.port}`;
    // The proxy records a connection's close (reason, lifetime) when it sees it, which can be just after
    // the script has exited.
    const proxy = sidecar.components.find(isBoltProxyComponent)?.proxy;
    await eventually(() => assert.equal(proxy?.activeConnections, 0, 'the script has closed its connections'));
    const { samples } = parseExposition(await (await fetch(`${base}/metrics`)).text());
    const python5 = { user_agent: 'neo4j-python/5' };
    assert.ok(sample(samples, 'neo4j_proxy_client_connections_opened_total', python5) >= 1);
    assert.ok(
      sample(samples, 'neo4j_proxy_client_connections_closed_total', { ...python5, reason: 'client_closed' }) >= 1,
    );
    assert.ok(sample(samples, 'neo4j_proxy_client_connection_lifetime_seconds_count', python5) >= 1);
    assert.ok(sample(samples, 'neo4j_proxy_queries_per_connection_sum', python5) >= 3);
    assert.equal(sample(samples, 'neo4j_proxy_client_connections_active', {}), 0);
    assert.ok(sample(samples, 'neo4j_proxy_routing_tables_rewritten_total', { via: 'ROUTE' }) >= 1);
    assert.ok(sample(samples, 'neo4j_proxy_bolt_versions_total', { version: '5.8' }) >= 1);
    assert.equal(
      sample(samples, 'neo4j_query_duration_seconds_count', { source: 'proxy', mode: 'read', outcome: 'success' }),
      1,
    );
    assert.ok(
      sample(samples, 'neo4j_query_duration_seconds_count', { source: 'proxy', mode: 'write', outcome: 'success' }) >=
        1,
    );
    assert.equal(
      sample(samples, 'neo4j_query_errors_total', { source: 'proxy', code: 'Neo.ClientError.Statement.SyntaxError' }),
      1,
    );
    assert.ok(sample(samples, 'neo4j_proxy_messages_total', { direction: 'client_to_server', message: 'RUN' }) >= 3);
    assert.ok(sample(samples, 'neo4j_proxy_bytes_total', { direction: 'server_to_client' }) > 0);

    await sidecar.recorder.flush();
    const expected = [
      /^neo4j\.proxy\.client_connections\.opened:\d+\|c\|#user_agent:neo4j-python\/5$/,
      /^neo4j\.query\.duration:[\d.:]+\|ms\|#source:proxy,database:neo4j,mode:read,outcome:success$/,
      /^neo4j\.query\.errors:1\|c\|#source:proxy,database:neo4j,code:Neo\.ClientError\.Statement\.SyntaxError$/,
      /^neo4j\.proxy\.client_connection\.lifetime:[\d.:]+\|ms\|#user_agent:neo4j-python\/5$/,
    ];
    // The flushed datagrams may still be on their way to this process.
    await eventually(() => {
      for (const pattern of expected) {
        assert.ok(
          statsd.lines.some((line) => pattern.test(line)),
          `no StatsD line matched ${pattern}:\n${statsd.lines.join('\n')}`,
        );
      }
    }, 30_000);
  });

  it('shows the proxy in /status and /readyz', async () => {
    const base = `http://127.0.0.1:${sidecar.httpAddress.port}`;
    const status = (await (await fetch(`${base}/status`)).json()) as {
      proxy: { listen: string; upstream: string; activeConnections: number; boltVersions: Record<string, number> };
    };
    assert.equal(status.proxy.listen, proxyAddress());
    assert.equal(status.proxy.upstream, server.uri);
    assert.equal(typeof status.proxy.activeConnections, 'number');
    assert.ok((status.proxy.boltVersions['5.8'] ?? 0) >= 1);
    const readiness = (await (await fetch(`${base}/readyz`)).json()) as {
      checks: Record<string, { ok: boolean; detail?: string }>;
    };
    assert.deepEqual(readiness.checks.proxy, { ok: true, detail: `listening on ${proxyAddress()}` });
  });
});
