/**
 * The cluster test setting itself (test/support/cluster.ts): each member answers with its own marker,
 * a member stops and starts again with its data, writes are counted per member, and the real
 * JavaScript driver routed by the scripted router reads from a reader and writes to the writer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import neo4j from 'neo4j-driver';
import { READ_MEMBER_QUERY, startTestCluster, type TestCluster, WRITE_MEMBER_QUERY } from '../support/cluster.ts';

/** No managed retries: a stopped member must fail the read at once, not after 30 s of retrying. */
const quiet = { logging: { level: 'error' as const, logger: () => {} }, maxTransactionRetryTime: 0 };

describe('test cluster', () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await startTestCluster();
  });
  after(() => cluster?.destroy());

  async function servedBy(uri: string): Promise<string[]> {
    const driver = neo4j.driver(uri, neo4j.auth.basic(cluster.username, cluster.password), quiet);
    try {
      const { records } = await driver.executeQuery(READ_MEMBER_QUERY);
      return records.map((record) => record.get('member') as string);
    } finally {
      await driver.close();
    }
  }

  it('starts three members, each holding only its own marker', async () => {
    const names = Object.keys(cluster.members).sort();
    assert.deepEqual(names, ['reader-1', 'reader-2', 'writer']);
    for (const name of names) {
      const member = cluster.members[name];
      assert.ok(member);
      assert.deepEqual(await servedBy(member.uri), [name]);
      assert.equal(cluster.memberAt(member.address), member);
    }
  });

  it('routes the real driver through the scripted router: reads to a reader, writes to the writer only', async () => {
    const driver = neo4j.driver(cluster.router.uri, neo4j.auth.basic(cluster.username, cluster.password), quiet);
    const id = `fixture-${process.pid}`;
    try {
      const read = await driver.executeQuery(READ_MEMBER_QUERY, {}, { routing: neo4j.routing.READ });
      assert.ok(['reader-1', 'reader-2'].includes(read.records[0]?.get('member')), 'a read lands on a reader');
      const write = await driver.executeQuery(WRITE_MEMBER_QUERY, { id }, { routing: neo4j.routing.WRITE });
      assert.equal(write.records[0]?.get('member'), 'writer');
    } finally {
      await driver.close();
    }
    assert.ok(cluster.router.routeRequests.total >= 1);
    assert.deepEqual(await cluster.countWrites(id), { writer: 1, 'reader-1': 0, 'reader-2': 0 });
  });

  it('serves the table a test sets, members named by name', async () => {
    cluster.router.setTable(cluster.table({ writers: ['writer'], readers: ['reader-2'] }));
    const driver = neo4j.driver(cluster.router.uri, neo4j.auth.basic(cluster.username, cluster.password), quiet);
    try {
      const served: string[] = [];
      for (let read = 0; read < 3; read++) {
        const { records } = await driver.executeQuery(READ_MEMBER_QUERY, {}, { routing: neo4j.routing.READ });
        served.push(records[0]?.get('member'));
      }
      assert.deepEqual(served, ['reader-2', 'reader-2', 'reader-2']);
    } finally {
      await driver.close();
    }
  });

  it('stops a member and starts it again with its marker', async () => {
    const member = cluster.members['reader-2'];
    assert.ok(member);
    await member.server.stop();
    assert.equal(member.server.pid(), undefined);
    await assert.rejects(servedBy(member.uri), 'a stopped member refuses connections');
    await member.server.start();
    assert.deepEqual(await servedBy(member.uri), ['reader-2']);
  });
});
