/**
 * What one client sets on its connection stays its own through the pooling proxy, to the real Neo4j
 * 5.26: notification settings sent in one client's HELLO never reach another client sharing the pool,
 * and bookmarks from a transaction on one upstream hold on another (causal chains across upstreams).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import neo4j, { type Driver } from 'neo4j-driver';
import type { PoolingMode } from '../../src/proxy/index.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { ownTransaction, perTask, quiet } from './pooling-support.ts';
import { startTestProxy, type TestProxy } from './support.ts';

const MODES: readonly PoolingMode[] = ['session', 'transaction'];

let server: TestNeo4j;

before(async () => {
  server = await sharedNeo4j();
});
after(async () => {
  await releaseSharedNeo4j();
});

/** A query Neo4j answers with an UnknownLabelWarning (a WARNING) when the client wants notifications. */
const WARNS = 'MATCH (n:PoolingLabelThatDoesNotExist) RETURN n';

async function warningCodes(driver: Driver): Promise<string[]> {
  const { summary } = await driver.executeQuery(WARNS);
  return summary.notifications.map((notification) => notification.code);
}

for (const mode of MODES) {
  describe(`pooling ${mode}: one client's connection settings stay its own`, { timeout: 180_000 }, () => {
    let proxy: TestProxy;
    before(async () => {
      // One upstream: both kinds of client must take turns on the pool's only slot.
      proxy = await startTestProxy(server.uri, { pooling: { mode, maxUpstreams: 1 } });
    });
    after(async () => {
      await proxy?.stop();
    });

    test("notifications turned off in one client's HELLO never reach another client", async () => {
      const token = neo4j.auth.basic(server.username, server.password);
      const silent = { notificationFilter: { minimumSeverityLevel: 'OFF' as const } };
      const direct = await perTask(server.uri, token, warningCodes);
      assert.deepEqual(direct, ['Neo.ClientNotification.Statement.UnknownLabelWarning']);
      assert.deepEqual(await perTask(server.uri, token, warningCodes, silent), []);
      for (let round = 0; round < 4; round++) {
        assert.deepEqual(await perTask(proxy.boltUri, token, warningCodes, silent), [], `round ${round}, silent`);
        assert.deepEqual(await perTask(proxy.boltUri, token, warningCodes), direct, `round ${round}, default`);
      }
      // The same with both kinds of client connected at once, each keeping its connection (session mode
      // lends each its own upstream for that long, so this pool has room for both).
      const both = await startTestProxy(server.uri, { pooling: { mode, maxUpstreams: 2 } });
      const quietClient = neo4j.driver(both.boltUri, token, { ...quiet, ...silent });
      const chattyClient = neo4j.driver(both.boltUri, token, quiet);
      try {
        for (let round = 0; round < 3; round++) {
          const [silenced, told] = await Promise.all([warningCodes(quietClient), warningCodes(chattyClient)]);
          assert.deepEqual(silenced, [], `round ${round}, silent client`);
          assert.deepEqual(told, direct, `round ${round}, default client`);
        }
      } finally {
        await Promise.all([quietClient.close(), chattyClient.close()]);
        await both.stop();
      }
    });

    test('bookmarks chain across upstreams', async () => {
      const wide = await startTestProxy(server.uri, { pooling: { mode, maxUpstreams: 4 } });
      const token = neo4j.auth.basic(server.username, server.password);
      const writer = neo4j.driver(wide.boltUri, token, { ...quiet, maxConnectionPoolSize: 1 });
      const reader = neo4j.driver(wide.boltUri, token, { ...quiet, maxConnectionPoolSize: 1 });
      // Holds a transaction open during every other step, so that step cannot run on the upstream the
      // pool would lend next (in transaction mode upstreams are lent per transaction, warmest first).
      const holder = neo4j.driver(wide.boltUri, token, { ...quiet, maxConnectionPoolSize: 1 });
      const chain = randomUUID();
      try {
        // Each step runs on the other driver's upstream, with the bookmarks of the step before, and must
        // see every step before it.
        const upstreams = new Set<string>();
        let bookmarks: string[] = [];
        for (let step = 0; step < 6; step++) {
          const session = (step % 2 === 0 ? writer : reader).session({ bookmarks });
          const holding = holder.session();
          const held = step % 2 === 0 ? await holding.beginTransaction() : undefined;
          await held?.run('RETURN 1');
          try {
            const seen = await session.executeWrite(async (tx) => {
              upstreams.add((await ownTransaction(tx)).connectionId);
              const { records } = await tx.run(
                'MATCH (s:PoolingChain {chain: $chain}) WITH count(s) AS before ' +
                  'CREATE (:PoolingChain {chain: $chain, step: $step}) RETURN before',
                { chain, step },
              );
              return neo4j.integer.toNumber(records[0]?.get('before'));
            });
            assert.equal(seen, step, `step ${step} saw ${seen} earlier steps`);
            bookmarks = session.lastBookmarks();
            assert.equal(bookmarks.length, 1, `step ${step} got a bookmark`);
          } finally {
            await held?.commit();
            await Promise.all([session.close(), holding.close()]);
          }
        }
        assert.ok(upstreams.size >= 2, `the steps ran on ${upstreams.size} upstream`);
      } finally {
        await Promise.all([writer.close(), reader.close(), holder.close()]);
        await wide.stop();
        const cleanup = neo4j.driver(server.uri, token, quiet);
        await cleanup.executeQuery('MATCH (s:PoolingChain {chain: $chain}) DELETE s', { chain });
        await cleanup.close();
      }
    });
  });
}
