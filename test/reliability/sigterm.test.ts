/**
 * SIGTERM to the real CLI while workers query through its proxy: transactions open at that moment
 * finish within the grace period, the counters held for the next StatsD flush (a minute away) are
 * sent before the process goes, and it exits 0. In transaction mode under per-task writes and a
 * service's back-to-back transactions: /readyz answers 503 at once while /healthz stays 200, a
 * transaction open across the signal commits, and every client is closed at a transaction boundary
 * (no transaction fails after one of its writes was acknowledged; what Neo4j holds matches what the
 * workers were told).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createSocket } from 'node:dgram';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import neo4j, { type Driver } from 'neo4j-driver';
import { committedIds, inFlightAt, judge, startJsLoad } from '../../scripts/load/per-task-writes.ts';
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

  it('in transaction mode, goes unready first and closes each client at a transaction boundary', async () => {
    const server = await sharedNeo4j();
    const sidecar = await spawnSidecarCli(['run'], {
      NEO4J_URI: server.uri,
      NEO4J_PASSWORD: server.password,
      SIDECAR__PROXY__POOLING__MODE: 'transaction',
      // Far beyond what the open transaction needs: nothing may be cut off by the grace period.
      SIDECAR__PROXY__SHUTDOWN_GRACE_MS: '120000',
      SIDECAR__PROBES__ENABLED: 'false',
    });
    const uri = `bolt://127.0.0.1:${sidecar.proxyPort}`;
    const auth = neo4j.auth.basic(server.username, server.password);
    const quiet = { logging: { level: 'error' as const, logger: () => {} } };
    const observer = neo4j.driver(server.uri, auth, quiet);
    const holder = neo4j.driver(uri, auth, quiet);
    const runId = `sigterm-${randomUUID()}`;
    const serviceRun = `${runId}-service`;
    const heldRun = `${runId}-held`;
    try {
      assert.ok(await sidecar.waitForOk('/readyz'), `the sidecar never became ready:\n${sidecar.logs()}`);
      const load = startJsLoad({
        uri,
        username: server.username,
        password: server.password,
        runId,
        workers: 4,
        shape: 'session.run',
      });
      const service = startTransactionLoop(neo4j.driver(uri, auth, quiet), serviceRun);
      // The worker whose transaction is open when the signal comes.
      const heldSession = holder.session();
      const heldTx = await heldSession.beginTransaction();
      await heldTx.run('CREATE (:PerTaskWrite {run: $run, id: 1})', { run: heldRun });
      await eventually(() => {
        assert.ok(load.finished() >= 20, `${load.finished()} per-task writes so far`);
        assert.ok(service.transactions() >= 10, `${service.transactions()} service transactions so far`);
      }, 120_000);

      const signalledAtMs = Date.now();
      sidecar.child.kill('SIGTERM');
      // Readiness goes first: 503 while the held transaction keeps the proxy draining, /healthz still 200.
      const readyz = await eventually(async () => {
        const response = await fetch(`${sidecar.httpUrl}/readyz`);
        assert.equal(response.status, 503);
        return (await response.json()) as { ready: boolean; reason?: string };
      }, 30_000);
      assert.match(readyz.reason ?? '', /shutting down/);
      assert.equal((await fetch(`${sidecar.httpUrl}/healthz`)).status, 200);
      await eventually(
        async () => assert.equal(await connectionRefused(sidecar.proxyPort), true, 'the proxy still accepts'),
        30_000,
      );
      // Through the stopping proxy: the held transaction writes again and commits.
      await heldTx.run('CREATE (:PerTaskWrite {run: $run, id: 2})', { run: heldRun });
      await heldTx.commit();
      await heldSession.close();

      const code = await Promise.race([
        sidecar.exited,
        new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 60_000)),
      ]);
      assert.equal(code, 0, sidecar.logs());
      const records = await load.stop();
      const transactions = await service.stop();

      assert.deepEqual([...(await committedIds(observer, heldRun)).keys()].sort(), [1, 2]);
      const verdict = judge(records, await committedIds(observer, runId));
      console.log(
        `per-task writes: ${verdict.tasks} tasks, ${verdict.failed} failed (${inFlightAt(records, signalledAtMs)} in flight at SIGTERM), by code ${JSON.stringify(verdict.failuresByCode)}`,
      );
      assert.equal(verdict.lost, 0, 'an acknowledged write is missing');
      assert.equal(verdict.duplicated, 0);
      assert.equal(verdict.failedButCommitted, 0, 'a task was told it failed although its write committed');

      const committed = await committedIds(observer, serviceRun);
      const inside = transactions.filter((tx) => tx.outcome === 'failed' && tx.stepsAnswered > 0);
      console.log(
        `service transactions: ${transactions.length}, ${transactions.filter((tx) => tx.outcome === 'failed').length} failed, ${inside.length} of them inside the transaction`,
      );
      assert.deepEqual(inside, [], 'a client was closed inside its transaction');
      for (const tx of transactions) {
        assert.equal(committed.get(tx.id) ?? 0, tx.outcome === 'committed' ? 2 : 0, `transaction ${tx.id}`);
      }
      assert.doesNotMatch(sidecar.logs(), /still busy after the grace period/);
    } finally {
      await holder.close();
      await observer.close();
      await sidecar.stop();
    }
  });
});

interface ServiceTransaction {
  readonly id: number;
  readonly outcome: 'committed' | 'failed';
  /** Steps of the transaction (BEGIN, then each write) answered before it failed; 3 when it committed. */
  readonly stepsAnswered: number;
}

/**
 * A service's long-lived driver running two-write transactions back to back, computing a little
 * between the writes: a close inside a transaction shows as a failure after its BEGIN was answered.
 */
function startTransactionLoop(
  driver: Driver,
  run: string,
): { transactions: () => number; stop: () => Promise<ServiceTransaction[]> } {
  const done: ServiceTransaction[] = [];
  let running = true;
  const loop = (async () => {
    for (let id = 0; running; id++) {
      const session = driver.session();
      let stepsAnswered = 0;
      try {
        const tx = await session.beginTransaction();
        stepsAnswered++;
        await tx.run('CREATE (:PerTaskWrite {run: $run, id: $id})', { run, id });
        stepsAnswered++;
        await new Promise((resolve) => setTimeout(resolve, 10));
        await tx.run('CREATE (:PerTaskWrite {run: $run, id: $id})', { run, id });
        stepsAnswered++;
        await tx.commit();
        done.push({ id, outcome: 'committed', stepsAnswered });
      } catch {
        done.push({ id, outcome: 'failed', stepsAnswered });
        await new Promise((resolve) => setTimeout(resolve, 50));
      } finally {
        await session.close().catch(() => {});
      }
    }
  })();
  return {
    transactions: () => done.length,
    async stop() {
      running = false;
      await loop;
      await driver.close();
      return done;
    },
  };
}
