/**
 * SIGTERM to the real CLI while workers query through its proxy: transactions open at that moment
 * finish within the grace period, the counters held for the next StatsD flush (a minute away) are
 * sent before the process goes, and it exits 0.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import neo4j from 'neo4j-driver';
import { spawnSidecarCli } from '../support/cli.ts';
import { eventually } from '../support/eventually.ts';
import { releaseSharedNeo4j, sharedNeo4j } from '../support/neo4j.ts';

const WORKERS = 4;

/** Whether a TCP connection to the port is refused (the listener closed), rather than accepted. */
function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

describe('SIGTERM under load', () => {
  after(releaseSharedNeo4j);

  it('lets open transactions finish, flushes StatsD and exits 0', async () => {
    const server = await sharedNeo4j();
    const statsd = createSocket('udp4');
    const statsdLines: string[] = [];
    statsd.on('message', (packet) => statsdLines.push(...packet.toString().split('\n')));
    await new Promise<void>((resolve) => statsd.bind(0, '127.0.0.1', resolve));
    const sidecar = await spawnSidecarCli(['run'], {
      NEO4J_URI: server.uri,
      NEO4J_PASSWORD: server.password,
      SIDECAR__PROXY__SHUTDOWN_GRACE_MS: '10000',
      SIDECAR__PROBES__ENABLED: 'false',
      SIDECAR__STATSD__ENABLED: 'true',
      SIDECAR__STATSD__PORT: String(statsd.address().port),
      // Nothing would be sent before the test ends but for the flush on shutdown.
      SIDECAR__STATSD__FLUSH_INTERVAL_MS: '60000',
      SIDECAR__STATSD__MAX_BUFFER_SIZE: '65000',
    });
    const driver = neo4j.driver(
      `bolt://127.0.0.1:${sidecar.proxyPort}`,
      neo4j.auth.basic(server.username, server.password),
      { logging: { level: 'error', logger: () => {} } },
    );
    try {
      const ready = await sidecar.waitForOk('/readyz');
      assert.ok(ready, `the sidecar never became ready:\n${sidecar.logs()}`);

      await assert.rejects(driver.executeQuery('RETURN 1 +'));
      for (let index = 0; index < 20; index++) await driver.executeQuery('RETURN $i', { i: index });
      const sessions = Array.from({ length: WORKERS }, () => driver.session());
      const transactions = await Promise.all(sessions.map((session) => session.beginTransaction()));
      await Promise.all(transactions.map((tx, index) => tx.run('RETURN $i AS i', { i: index })));

      sidecar.child.kill('SIGTERM');
      // The proxy has taken the signal once it refuses new connections; only then is the work below
      // known to go through a stopping proxy.
      await eventually(
        async () => assert.equal(await connectionRefused(sidecar.proxyPort), true, 'the proxy still accepts'),
        30_000,
      );
      // In flight when the signal came: each transaction runs more work and commits through the stopping proxy.
      const results = await Promise.all(
        transactions.map(async (tx, index) => {
          const result = await tx.run('UNWIND range(1, 1000) AS n RETURN sum(n) + $i AS total', { i: index });
          await tx.commit();
          return Number(result.records[0]?.get('total'));
        }),
      );
      assert.deepEqual(
        results,
        transactions.map((_, index) => 500_500 + index),
      );
      await Promise.all(sessions.map((session) => session.close()));

      const code = await Promise.race([
        sidecar.exited,
        new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 20_000)),
      ]);
      assert.equal(code, 0, sidecar.logs());
      // Sent before the process went; the datagrams may still be on their way to this process.
      await eventually(() => {
        const sent = statsdLines.join('\n');
        assert.match(sent, /^neo4j\.query\.errors:1\|c\|#source:proxy/m, `StatsD got:\n${sent}`);
        assert.match(sent, /^neo4j\.query\.duration:[\d.:]+\|ms\|#source:proxy/m);
      }, 30_000);
      assert.match(sidecar.logs(), /"msg":"stopped"/);
    } finally {
      await driver.close();
      statsd.close();
      await sidecar.stop();
    }
  });
});
