/**
 * /readyz answers from state the sidecar keeps, never from a Neo4j round trip of its own: the real CLI
 * with its default configuration against a Neo4j of the test's own that is frozen (SIGSTOP, so its
 * sockets stay open and nothing answers) and thawed again. Every /readyz request must be answered while
 * Neo4j is frozen (a round trip of its own would never come back), and the 503's reason must be the
 * background check's "did not answer for N s", which only the kept state can give.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LocalNeo4j } from '../../scripts/neo4j/local-neo4j.ts';
import { type SidecarCli, spawnSidecarCli } from '../support/cli.ts';
import { privateNeo4j } from '../support/neo4j.ts';

/**
 * A request waiting on the frozen Neo4j would hang until the freeze ends; a healthy answer takes
 * milliseconds. Ten seconds tells the two apart on a loaded machine (which can hold a process off the
 * CPU for a second) without reading the machine's speed.
 */
const ANSWER_WITHIN_MS = 10_000;

let server: LocalNeo4j;
let sidecar: SidecarCli;

before(async () => {
  server = await privateNeo4j('readyz-frozen');
  sidecar = await spawnSidecarCli(['run'], { NEO4J_URI: server.uri, NEO4J_PASSWORD: server.password });
  assert.ok(await sidecar.waitForOk('/readyz'), sidecar.logs());
});

after(async () => {
  const pid = server?.pid();
  if (pid) process.kill(pid, 'SIGCONT');
  await sidecar?.stop();
  await server?.destroy();
});

interface ReadyzAnswer {
  status: number;
  body: { ready: boolean; reason?: string };
  ms: number;
}

/** One /readyz request, failed by the test when it takes longer than ANSWER_WITHIN_MS. */
async function readyz(): Promise<ReadyzAnswer> {
  const started = performance.now();
  let response: Response;
  try {
    response = await fetch(`${sidecar.httpUrl}/readyz`, { signal: AbortSignal.timeout(ANSWER_WITHIN_MS) });
  } catch (error) {
    throw new Error(`/readyz did not answer within ${ANSWER_WITHIN_MS} ms`, { cause: error });
  }
  const body = (await response.json()) as ReadyzAnswer['body'];
  return { status: response.status, body, ms: performance.now() - started };
}

/** Asks /readyz every 200 ms (each answer bounded) until `done` accepts one; that answer. */
async function readyzUntil(done: (answer: ReadyzAnswer) => boolean, timeoutMs: number): Promise<ReadyzAnswer[]> {
  const answers: ReadyzAnswer[] = [];
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const answer = await readyz();
    answers.push(answer);
    if (done(answer)) return answers;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.fail(`no accepted /readyz answer within ${timeoutMs} ms; last: ${JSON.stringify(answers.at(-1))}`);
}

describe('/readyz with Neo4j frozen', () => {
  it('answers 503 with the reason at once while Neo4j does not answer, and 200 again after it thaws', async () => {
    const pid = server.pid();
    assert.ok(pid, 'the test server runs');
    assert.equal((await readyz()).status, 200);

    process.kill(pid, 'SIGSTOP');
    // The background check has a deadline of its own well under the readinessProbe's timeout; give it
    // a few of its rounds to notice, while every request in between must still answer at once.
    // (A probe run caught by the freeze may time out first and give its own reason before it.)
    const neo4jSilent = /neo4j: Neo4j did not answer for [\d.]+ s/;
    const frozen = await readyzUntil(
      (answer) => answer.status === 503 && neo4jSilent.test(answer.body.reason ?? ''),
      60_000,
    );
    const notReady = frozen.at(-1)!;
    assert.equal(notReady.body.ready, false);
    assert.ok(
      frozen.every((answer) => answer.status === 200 || !answer.body.ready),
      'every answer is consistent with its status',
    );
    // And it stays a 503 from the kept state while the server stays frozen.
    for (let i = 0; i < 5; i++) {
      const answer = await readyz();
      assert.equal(answer.status, 503, JSON.stringify(answer.body));
      assert.match(answer.body.reason ?? '', neo4jSilent);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    assert.equal((await fetch(`${sidecar.httpUrl}/healthz`)).status, 200, 'liveness does not depend on Neo4j');

    process.kill(pid, 'SIGCONT');
    // Ready again without a restart once the background check and the readiness-gating probes have
    // run against the thawed server (the probes run every 15 s by default).
    const thawed = await readyzUntil((answer) => answer.status === 200, 120_000);
    assert.equal(thawed.at(-1)!.body.ready, true);
    assert.equal(sidecar.child.exitCode, null, 'the sidecar kept running');
  });
});
