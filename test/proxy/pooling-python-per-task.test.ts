/**
 * The per-task-driver pattern as Python workers write it (a new official driver per task, 8 threads),
 * through the session-pooling proxy to the real Neo4j 5.26: every result right, and Neo4j never lists
 * more of the workers' connections at once than the pool's size. The 5.x line logs in with LOGON on a
 * pooled upstream; the 4.4 line logs in inside HELLO, so each of its tasks gets a fresh upstream (the
 * login cache is off by default) and only the count at once is bounded.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import neo4j, { type Driver } from 'neo4j-driver';
import { ensurePythonClient, type PythonDriverLine } from '../../scripts/clients/python.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { quiet } from './pooling-support.ts';
import { startTestProxy, type TestProxy } from './support.ts';

const execFileAsync = promisify(execFile);

const PER_TASK_WORKER = `
import json, os, sys, threading
from neo4j import GraphDatabase

tasks, threads = int(sys.argv[1]), int(sys.argv[2])
lock = threading.Lock()
correct = []
next_task = [0]

def worker():
    while True:
        with lock:
            task = next_task[0]
            next_task[0] += 1
        if task >= tasks:
            return
        driver = GraphDatabase.driver(os.environ["NEO4J_URI"], auth=(os.environ["NEO4J_USERNAME"], os.environ["NEO4J_PASSWORD"]),
                                      user_agent=os.environ["USER_AGENT"], max_connection_pool_size=1)
        try:
            with driver.session() as session:
                value = session.run("RETURN $task AS task", task=task).single()["task"]
        finally:
            driver.close()
        if value == task:
            with lock:
                correct.append(task)

pool = [threading.Thread(target=worker) for _ in range(threads)]
for thread in pool:
    thread.start()
for thread in pool:
    thread.join()
print(json.dumps({"correct": len(correct)}))
`;

const TASKS = 300;
const MAX_UPSTREAMS = 4;

let server: TestNeo4j;
let observer: Driver;
before(async () => {
  server = await sharedNeo4j();
  observer = neo4j.driver(server.uri, neo4j.auth.basic(server.username, server.password), {
    ...quiet,
    maxConnectionPoolSize: 1,
  });
});
after(async () => {
  await observer?.close();
  await releaseSharedNeo4j();
});

for (const driverLine of ['5', '4.4'] as PythonDriverLine[]) {
  describe(`Python ${driverLine} per-task drivers through session pooling`, { timeout: 300_000 }, () => {
    let proxy: TestProxy;
    before(async () => {
      proxy = await startTestProxy(server.uri, { pooling: { mode: 'session', maxUpstreams: MAX_UPSTREAMS } });
    });
    after(async () => {
      await proxy?.stop();
    });

    test(`${TASKS} tasks, 8 threads: right results, at most ${MAX_UPSTREAMS} Neo4j connections at once`, async (t) => {
      const python = await ensurePythonClient({ driverLine });
      const userAgent = `python-per-task/${randomUUID().slice(0, 8)}`;
      let most = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          const { records } = await observer.executeQuery(
            'CALL dbms.listConnections() YIELD userAgent WHERE userAgent = $userAgent RETURN count(*) AS n',
            { userAgent },
          );
          most = Math.max(most, records[0]?.get('n').toNumber());
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })();
      const { stdout } = await execFileAsync(python, ['-c', PER_TASK_WORKER, String(TASKS), '8'], {
        env: {
          PATH: process.env.PATH ?? '',
          NEO4J_URI: proxy.boltUri,
          NEO4J_USERNAME: server.username,
          NEO4J_PASSWORD: server.password,
          USER_AGENT: userAgent,
        },
        timeout: 240_000,
      }).finally(() => {
        sampling = false;
      });
      await sampler;
      assert.deepEqual(JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}'), { correct: TASKS });
      const opened = await proxy.metric('neo4j_proxy_pool_checkouts_total', { result: 'opened' });
      t.diagnostic(`Neo4j listed at most ${most} of the workers' connections at once; the pool opened ${opened}`);
      assert.ok(most >= 1 && most <= MAX_UPSTREAMS, `Neo4j listed ${most} of the workers' connections at once`);
      if (driverLine === '5') {
        // LOGOFF + LOGON on pooled upstreams: a few connections serve every task.
        const closed = await proxy.metric('neo4j_proxy_pool_upstreams_closed_total');
        assert.ok(opened <= MAX_UPSTREAMS + closed, `the pool opened ${opened} upstreams for ${TASKS} tasks`);
      }
    });
  });
}
