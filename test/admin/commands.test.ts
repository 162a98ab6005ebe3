/**
 * The admin commands against a live sidecar (the real CLI both sides, a real Neo4j, real driver
 * traffic through the proxy): `top --once` says what /status, /proxy/pools and /proxy/clients say,
 * and the verbs fail with exit 1 and the reason when the sidecar is not there.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import neo4j from 'neo4j-driver';
import { freePort } from '../../scripts/neo4j/local-neo4j.ts';
import { runSidecarCli, type SidecarCli, spawnSidecarCli } from '../support/cli.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';

let server: TestNeo4j;
let sidecar: SidecarCli;

before(async () => {
  server = await sharedNeo4j();
  sidecar = await spawnSidecarCli(['run'], {
    NEO4J_URI: server.uri,
    NEO4J_PASSWORD: server.password,
    SIDECAR__PROXY__POOLING__MODE: 'transaction',
  });
  assert.ok(await sidecar.waitForOk('/healthz'), `the sidecar did not start:\n${sidecar.logs()}`);
});
after(async () => {
  await sidecar?.stop();
  await releaseSharedNeo4j();
});

describe('neo4j-pool-sidecar top --once', { timeout: 3 * 60_000 }, () => {
  it('prints one frame that agrees with /status and the pool views', async () => {
    const driver = neo4j.driver(`bolt://127.0.0.1:${sidecar.proxyPort}`, neo4j.auth.basic('neo4j', server.password), {
      logging: { level: 'error', logger: () => {} },
    });
    const session = driver.session();
    try {
      // One client connection kept open in a transaction, so the frame has a client in a unit.
      const transaction = await session.beginTransaction();
      await transaction.run("RETURN 'top-once' AS marker");
      const result = runSidecarCli(['top', '--once', '--interval', '0.5'], {
        SIDECAR__HTTP__PORT: String(sidecar.httpPort),
      });
      assert.equal(result.status, 0, result.stderr);
      const frame = result.stdout;
      assert.ok(!frame.includes('\x1b'), 'no ANSI codes without a terminal');

      const status = (await (await fetch(`${sidecar.httpUrl}/status`)).json()) as {
        version: string;
        proxy: { listen: string; upstream: string };
        alerts: { active: unknown[] };
      };
      assert.match(
        frame,
        new RegExp(
          `^neo4j-pool-sidecar ${status.version.replaceAll('.', '\\.')} at http://127\\.0\\.0\\.1:${sidecar.httpPort} `,
        ),
      );
      assert.ok(frame.includes(`proxy: ${status.proxy.listen} -> ${status.proxy.upstream}`), frame);
      assert.match(frame, /pool: transaction mode {2}not paused {2}Neo4j reachable/);
      assert.match(frame, /1 connected: login 0 {2}in_unit 1 {2}idle 0/);
      assert.match(frame, /neo4j-javascript\S*\s+in_unit/);
      assert.match(
        frame,
        new RegExp(`alerts firing: ${status.alerts.active.length === 0 ? 'none' : status.alerts.active.length}`),
      );
      assert.match(frame, /upstreams {2}idle \d+ {2}in_use 1 /);
      await transaction.commit();
    } finally {
      await session.close();
      await driver.close();
    }
  });
});

describe('the verbs without a sidecar', () => {
  it('exit 1 and say that the sidecar did not answer', async () => {
    const port = await freePort();
    for (const verb of ['pause', 'resume', 'reconnect', 'top']) {
      const result = runSidecarCli([verb, ...(verb === 'top' ? ['--once'] : [])], {
        SIDECAR__HTTP__PORT: String(port),
      });
      assert.equal(result.status, 1, `${verb}: ${result.stdout}${result.stderr}`);
      assert.match(result.stderr, new RegExp(`127\\.0\\.0\\.1:${port}.*(did not answer|ECONNREFUSED)`), verb);
    }
  });
});
