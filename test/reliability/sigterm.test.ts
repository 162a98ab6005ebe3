/**
 * SIGTERM to the real CLI while workers query through its proxy: transactions open at that moment
 * finish within the grace period, the counters held for the next StatsD flush (a minute away) are
 * sent before the process goes, and it exits 0.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import neo4j from 'neo4j-driver';
import { freePort, repoRoot } from '../../scripts/neo4j/local-neo4j.ts';
import { releaseSharedNeo4j, sharedNeo4j } from '../support/neo4j.ts';

const WORKERS = 4;

describe('SIGTERM under load', () => {
  after(releaseSharedNeo4j);

  it('lets open transactions finish, flushes StatsD and exits 0', async () => {
    const server = await sharedNeo4j();
    const statsd = createSocket('udp4');
    const statsdLines: string[] = [];
    statsd.on('message', (packet) => statsdLines.push(...packet.toString().split('\n')));
    await new Promise<void>((resolve) => statsd.bind(0, '127.0.0.1', resolve));
    const [httpPort, proxyPort] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src', 'cli.ts'), 'run'], {
      cwd: repoRoot,
      env: {
        PATH: process.env.PATH ?? '',
        NEO4J_URI: server.uri,
        NEO4J_PASSWORD: server.password,
        SIDECAR__HTTP__PORT: String(httpPort),
        SIDECAR__PROXY__PORT: String(proxyPort),
        SIDECAR__PROXY__SHUTDOWN_GRACE_MS: '10000',
        SIDECAR__PROBES__ENABLED: 'false',
        SIDECAR__STATSD__ENABLED: 'true',
        SIDECAR__STATSD__PORT: String(statsd.address().port),
        // Nothing would be sent before the test ends but for the flush on shutdown.
        SIDECAR__STATSD__FLUSH_INTERVAL_MS: '60000',
        SIDECAR__STATSD__MAX_BUFFER_SIZE: '65000',
        SIDECAR__LOG__PRETTY: 'never',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const driver = neo4j.driver(`bolt://127.0.0.1:${proxyPort}`, neo4j.auth.basic(server.username, server.password), {
      logging: { level: 'error', logger: () => {} },
    });
    try {
      const deadline = Date.now() + 60_000;
      let ready = false;
      while (!ready && Date.now() < deadline) {
        ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`).then(
          (response) => response.ok,
          () => false,
        );
        if (!ready) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.ok(ready, `the sidecar never became ready:\n${output}`);

      await assert.rejects(driver.executeQuery('RETURN 1 +'));
      for (let index = 0; index < 20; index++) await driver.executeQuery('RETURN $i', { i: index });
      const sessions = Array.from({ length: WORKERS }, () => driver.session());
      const transactions = await Promise.all(sessions.map((session) => session.beginTransaction()));
      await Promise.all(transactions.map((tx, index) => tx.run('RETURN $i AS i', { i: index })));

      child.kill('SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 300));
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
        exited,
        new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 20_000)),
      ]);
      assert.equal(code, 0, output);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const sent = statsdLines.join('\n');
      assert.match(sent, /^neo4j\.query\.errors:1\|c\|#source:proxy/m, `StatsD got:\n${sent}`);
      assert.match(sent, /^neo4j\.query\.duration:[\d.:]+\|ms\|#source:proxy/m);
      assert.match(output, /"msg":"stopped"/);
    } finally {
      await driver.close();
      statsd.close();
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
