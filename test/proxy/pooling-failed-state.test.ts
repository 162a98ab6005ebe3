/**
 * Transaction mode keeps Neo4j's FAILED state per client: after a FAILURE, every request but RESET is
 * IGNORED until the client's RESET, though the upstream that failed went back to the pool reset. The
 * same raw Bolt sequences go straight to Neo4j 5.26 and through the proxy; the summaries must match.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BoltSignature, type PackStreamValue } from '../../src/proxy/bolt/index.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { loggedInBolt58, logon, map, message, type RawBoltClient, runAndPull } from '../support/raw-bolt.ts';
import { eventually, hostPort, startTestProxy, type TestProxy } from './support.ts';

let server: TestNeo4j;
let proxy: TestProxy;

before(async () => {
  server = await sharedNeo4j();
  proxy = await startTestProxy(server.uri, { pooling: { mode: 'transaction', maxUpstreams: 2 } });
});
after(async () => {
  await proxy?.stop();
  await releaseSharedNeo4j();
});

const NAMES: Record<number, string> = {
  [BoltSignature.SUCCESS]: 'SUCCESS',
  [BoltSignature.FAILURE]: 'FAILURE',
  [BoltSignature.IGNORED]: 'IGNORED',
  [BoltSignature.RECORD]: 'RECORD',
};

/** One step: the bytes sent in one write and how many summaries answer them. */
interface Step {
  readonly send: Buffer;
  readonly summaries: number;
}

/** Every reply to each step, as `SIGNATURE` or `FAILURE code`, read step by step so units end between them. */
async function play(address: string, steps: readonly Step[]): Promise<string[][]> {
  const client: RawBoltClient = await loggedInBolt58(address, {
    userAgent: 'failed-state-test/1.0',
    username: server.username,
    password: server.password,
  });
  try {
    const replies: string[][] = [];
    for (const step of steps) {
      client.write(step.send);
      const seen: string[] = [];
      for (let summaries = 0; summaries < step.summaries; ) {
        const reply = await client.readMessage();
        const name = NAMES[reply.signature] ?? `0x${reply.signature.toString(16)}`;
        const metadata = reply.fields[0];
        const code =
          reply.signature === BoltSignature.FAILURE && metadata instanceof Map
            ? (metadata.get('neo4j_code') ?? metadata.get('code'))
            : null;
        seen.push(code === null ? name : `${name} ${String(code)}`);
        if (reply.signature !== BoltSignature.RECORD) summaries++;
      }
      replies.push(seen);
    }
    return replies;
  } finally {
    client.close();
  }
}

const run = (query: string): Step => ({ send: runAndPull(query), summaries: 2 });
const one = (signature: number, ...fields: PackStreamValue[]): Step => ({
  send: message(signature, ...fields),
  summaries: 1,
});

describe('transaction mode keeps the FAILED state of a client', () => {
  it('after a failed auto-commit query: IGNORED until RESET, then queries run again, as direct', async () => {
    const steps = [
      run('RETURN 1/0'),
      run('RETURN 1 AS one'),
      one(BoltSignature.TELEMETRY, 0),
      one(BoltSignature.COMMIT),
      one(BoltSignature.ROLLBACK),
      one(BoltSignature.ROUTE, map({}), [], map({})),
      run('RETURN 2 AS two'),
      one(BoltSignature.RESET),
      run('RETURN 3 AS three'),
    ];
    const direct = await play(hostPort(server.uri), steps);
    const pooled = await play(proxy.proxy.address, steps);
    assert.deepEqual(pooled, direct);
    // What Neo4j answered, so the comparison cannot pass on two equally wrong runs.
    assert.deepEqual(direct[1], ['IGNORED', 'IGNORED']);
    assert.deepEqual(direct.at(-1), ['SUCCESS', 'RECORD', 'SUCCESS']);
  });

  it('after a failure inside an explicit transaction: COMMIT and more are IGNORED until RESET, as direct', async () => {
    const steps = [
      one(BoltSignature.BEGIN, map({})),
      run('RETURN 1/0'),
      one(BoltSignature.COMMIT),
      run('RETURN 1 AS one'),
      one(BoltSignature.ROLLBACK),
      one(BoltSignature.RESET),
      one(BoltSignature.BEGIN, map({})),
      run('RETURN 2 AS two'),
      one(BoltSignature.COMMIT),
    ];
    const direct = await play(hostPort(server.uri), steps);
    const pooled = await play(proxy.proxy.address, steps);
    assert.deepEqual(pooled, direct);
    assert.deepEqual(direct[2], ['IGNORED']);
    assert.deepEqual(direct.at(-1), ['SUCCESS']);
  });

  for (const [name, request] of [
    ['BEGIN', message(BoltSignature.BEGIN, map({}))],
    ['LOGOFF', message(BoltSignature.LOGOFF)],
    ['LOGON', logon('nobody', 'nothing')],
  ] as const) {
    it(`${name} after a failed query: refused as an invalid request and the connection closed, as direct`, async () => {
      const outcome = async (address: string): Promise<string[]> => {
        const client = await loggedInBolt58(address, {
          userAgent: 'failed-state-test/1.0',
          username: server.username,
          password: server.password,
        });
        try {
          client.write(runAndPull('RETURN 1/0'));
          const replies = [await client.readMessage(), await client.readMessage()];
          client.write(request);
          replies.push(await client.readMessage());
          await client.waitForClose();
          return replies.map((reply) => {
            const metadata = reply.fields[0];
            const code = metadata instanceof Map ? (metadata.get('neo4j_code') ?? metadata.get('code')) : undefined;
            return reply.signature === BoltSignature.FAILURE
              ? `FAILURE ${String(code)}`
              : (NAMES[reply.signature] ?? '');
          });
        } finally {
          client.close();
        }
      };
      const direct = await outcome(hostPort(server.uri));
      assert.deepEqual(direct, [
        'SUCCESS',
        'FAILURE Neo.ClientError.Statement.ArithmeticError',
        'FAILURE Neo.ClientError.Request.Invalid',
      ]);
      assert.deepEqual(await outcome(proxy.proxy.address), direct);
    });
  }
});

describe('transaction mode and a client that logged off', () => {
  it('closes a request sent while logged off as a protocol violation, not a framing problem', async () => {
    const rejected = (reason: string) => proxy.metric('neo4j_proxy_connections_rejected_total', { reason });
    const violationsBefore = await rejected('protocol_violation');
    const framingBefore = await rejected('framing');
    const client = await loggedInBolt58(proxy.proxy.address, {
      userAgent: 'failed-state-test/1.0',
      username: server.username,
      password: server.password,
    });
    try {
      // Between units the proxy answers LOGOFF itself; the RUN after it has no login to borrow an upstream with.
      client.write(message(BoltSignature.LOGOFF));
      assert.equal((await client.readMessage()).signature, BoltSignature.SUCCESS);
      client.write(runAndPull('RETURN 1 AS one'));
      await client.waitForClose();
    } finally {
      client.close();
    }
    await eventually(async () => assert.equal(await rejected('protocol_violation'), violationsBefore + 1));
    assert.equal(await rejected('framing'), framingBefore);
  });
});
