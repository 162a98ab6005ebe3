/**
 * Why a client connection ended, as the proxy counts it, against the real Neo4j: a client that says
 * GOODBYE and then closes left on its own, even when Neo4j (which closes at once on GOODBYE) is seen
 * closing first; a connection Neo4j drops without a GOODBYE is the server's close.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import neo4j from 'neo4j-driver';
import { BoltSignature } from '../../src/proxy/bolt/index.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import {
  connectBolt58,
  expectOneValue,
  hello,
  loggedInBolt58,
  logon,
  message,
  runAndPull,
} from '../support/raw-bolt.ts';
import { eventually, startTestProxy, type TestProxy } from './support.ts';

const CLOSED = 'neo4j_proxy_client_connections_closed_total';

let server: TestNeo4j;

before(async () => {
  server = await sharedNeo4j();
});
after(async () => {
  await releaseSharedNeo4j();
});

for (const mode of ['off', 'session'] as const)
  describe(`close reasons, pooling ${mode}`, () => {
    let proxy: TestProxy;
    before(async () => {
      proxy = await startTestProxy(server.uri, { pooling: { mode } });
    });
    after(async () => {
      await proxy?.stop();
    });

    it('GOODBYE then close counts as client_closed, also when Neo4j closes first', async () => {
      const count = 40;
      const serverClosedBefore = await proxy.metric(CLOSED, { reason: 'server_closed' });
      const clientClosedBefore = await proxy.metric(CLOSED, { reason: 'client_closed' });
      for (let i = 0; i < count; i++) {
        const client = await loggedInBolt58(proxy.proxy.address, {
          userAgent: 'goodbye-test/1.0',
          username: server.username,
          password: server.password,
        });
        client.write(runAndPull('RETURN 1 AS one'));
        await expectOneValue(client, 1);
        client.write(message(BoltSignature.GOODBYE));
        // Neo4j answers GOODBYE by closing (the pooling proxy does the same); this client closes only once
        // it saw that, so that close always reaches the proxy first (a driver that closes right after
        // GOODBYE races with it).
        await client.waitForClose();
        client.close();
      }
      // Real drivers too: each close() sends GOODBYE and closes its socket.
      for (let i = 0; i < 10; i++) {
        const driver = neo4j.driver(proxy.boltUri, neo4j.auth.basic(server.username, server.password), {
          logging: { level: 'error', logger: () => {} },
        });
        await driver.executeQuery('RETURN 1');
        await driver.close();
      }
      await eventually(async () => {
        assert.equal(await proxy.metric(CLOSED, { reason: 'client_closed' }), clientClosedBefore + count + 10);
      }, 10_000);
      assert.equal(await proxy.metric(CLOSED, { reason: 'server_closed' }), serverClosedBefore);
    });

    it('Neo4j closing without a GOODBYE from the client is server_closed', async () => {
      const before = await proxy.metric(CLOSED, { reason: 'server_closed' });
      // Neo4j answers a refused login with FAILURE and closes the connection itself.
      const client = await connectBolt58(proxy.proxy.address, [
        hello('server-close-test/1.0'),
        logon(server.username, 'wrong'),
      ]);
      assert.equal((await client.readMessage()).signature, BoltSignature.SUCCESS);
      assert.equal((await client.readMessage()).signature, BoltSignature.FAILURE);
      await client.waitForClose(10_000);
      await eventually(async () => {
        assert.equal(await proxy.metric(CLOSED, { reason: 'server_closed' }), before + 1);
      });
    });
  });
