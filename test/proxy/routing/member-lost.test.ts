/**
 * A cluster member lost inside a routed unit of work (transaction mode, neo4j:// upstream): a read's
 * client is told to retry and keeps its connection, a write's is closed (its outcome is unknown). The
 * member is scripted (test/support/scripted-bolt.ts) to drop the connection on COMMIT, the moment no
 * real server can be killed at on cue; routing-drivers.test.ts kills a real reader under real drivers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BoltSignature, type PackStreamMap } from '../../../src/proxy/bolt/index.ts';
import { POOLING_DEFAULTS, UPSTREAM_UNAVAILABLE_CODE } from '../../../src/proxy/index.ts';
import { describeMessage, loggedInBolt58, map, message, type RawBoltClient } from '../../support/raw-bolt.ts';
import {
  MEMBER_COLUMN,
  type NotALeaderMember,
  type ScriptedRouter,
  startNotALeaderMember,
  startScriptedRouter,
} from '../../support/scripted-bolt.ts';
import { startTestProxy, type TestProxy } from '../support.ts';

const LOGIN = { username: 'neo4j', password: 'cluster-password' };
const QUERY = 'MATCH (m:ClusterMember) RETURN m.name AS member';

async function expectReply(client: RawBoltClient, signature: number, what: string): Promise<PackStreamMap> {
  const reply = await client.readMessage();
  assert.equal(reply.signature, signature, `${what}: ${describeMessage(reply)}`);
  return (reply.fields[0] as PackStreamMap | undefined) ?? new Map();
}

/** BEGIN (mode r for a read), RUN and PULL of the marker query, each answered; the COMMIT is left to the test. */
async function openTransaction(client: RawBoltClient, access: 'read' | 'write', member: string): Promise<void> {
  client.write(
    Buffer.concat([
      message(BoltSignature.BEGIN, map(access === 'read' ? { mode: 'r' } : {})),
      message(BoltSignature.RUN, QUERY, map({}), map({})),
      message(BoltSignature.PULL, map({ n: -1 })),
    ]),
  );
  await expectReply(client, BoltSignature.SUCCESS, 'BEGIN');
  assert.deepEqual((await expectReply(client, BoltSignature.SUCCESS, 'RUN')).get('fields'), [MEMBER_COLUMN]);
  const record = await client.readMessage();
  assert.deepEqual(record.fields[0], [member], describeMessage(record));
  await expectReply(client, BoltSignature.SUCCESS, 'PULL');
}

describe('a member lost inside a routed unit of work', () => {
  let router: ScriptedRouter;
  let member: NotALeaderMember;
  let proxy: TestProxy;

  before(async () => {
    member = await startNotALeaderMember({ ...LOGIN, name: 'dies-at-commit', takesWrites: true, dropsCommits: true });
    router = await startScriptedRouter({
      ...LOGIN,
      table: { ttlSeconds: 300, routers: [], writers: [member.address], readers: [member.address] },
    });
    proxy = await startTestProxy(router.uri, { pooling: { ...POOLING_DEFAULTS, mode: 'transaction' } });
  });
  after(async () => {
    await proxy?.stop();
    await router?.close();
    await member?.close();
  });

  it('answers a read whose COMMIT it lost with a transient FAILURE, and the client keeps its connection', async () => {
    const client = await loggedInBolt58(proxy.proxy.address, { userAgent: 'member-lost-test/1.0', ...LOGIN });
    try {
      await openTransaction(client, 'read', member.name);
      const dropped = member.commitsDropped;
      client.write(message(BoltSignature.COMMIT));
      const failure = await expectReply(client, BoltSignature.FAILURE, 'COMMIT on a lost reader');
      assert.equal(failure.get('neo4j_code'), UPSTREAM_UNAVAILABLE_CODE, 'a code every driver retries');
      assert.match(String(failure.get('message')), /lost during a read; nothing was written/);
      assert.equal(member.commitsDropped, dropped + 1, 'the member took the COMMIT and died with it');

      // FAILED as after any FAILURE: IGNORED until RESET, then the next unit runs on a new upstream.
      client.write(message(BoltSignature.RUN, QUERY, map({}), map({ mode: 'r' })));
      await expectReply(client, BoltSignature.IGNORED, 'RUN before RESET');
      client.write(message(BoltSignature.RESET));
      await expectReply(client, BoltSignature.SUCCESS, 'RESET');
      client.write(
        Buffer.concat([
          message(BoltSignature.RUN, QUERY, map({}), map({ mode: 'r' })),
          message(BoltSignature.PULL, map({ n: -1 })),
        ]),
      );
      await expectReply(client, BoltSignature.SUCCESS, 'RUN');
      assert.deepEqual((await client.readMessage()).fields[0], [member.name]);
      await expectReply(client, BoltSignature.SUCCESS, 'PULL');
    } finally {
      client.close();
    }
  });

  it('closes a write whose COMMIT it lost: the write may have committed, so the client is not told to retry', async () => {
    const client = await loggedInBolt58(proxy.proxy.address, { userAgent: 'member-lost-test/1.0', ...LOGIN });
    try {
      await openTransaction(client, 'write', member.name);
      const dropped = member.commitsDropped;
      client.write(message(BoltSignature.COMMIT));
      await client.waitForClose();
      assert.equal(member.commitsDropped, dropped + 1);
    } finally {
      client.close();
    }
  });
});
