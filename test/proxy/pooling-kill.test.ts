/**
 * A client that dies with work half done, through the pooling proxy, to the real Neo4j 5.26: killed
 * inside an open transaction, in the middle of a result stream, and in the middle of a chunk. Neo4j
 * must commit nothing the client did not commit and keep no transaction open, and the next client on
 * the one pooled slot must get a clean upstream (a half-sent message reaching a reused upstream would
 * corrupt its next client's conversation).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import neo4j, { type Driver } from 'neo4j-driver';
import { BoltSignature } from '../../src/proxy/bolt/index.ts';
import type { PoolingMode } from '../../src/proxy/index.ts';
import { closeSharedNeo4j, openSharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { describeMessage, loggedInBolt58, map, message, type RawBoltClient } from '../support/raw-bolt.ts';
import { openTransactionsMarked, openTransactionsOn, ownTransaction, perTask, quiet } from './pooling-support.ts';
import { eventually, startTestProxy, type TestProxy } from './support.ts';

const MODES: readonly PoolingMode[] = ['session', 'transaction'];

let server: TestNeo4j;
let observer: Driver;

before(async () => {
  ({ server, driver: observer } = await openSharedNeo4j(quiet));
});
after(() => closeSharedNeo4j(observer));

/** Reads replies until a SUCCESS or FAILURE (skipping RECORDs), failing on FAILURE. */
async function expectSuccess(client: RawBoltClient, what: string): Promise<void> {
  for (;;) {
    const reply = await client.readMessage();
    if (reply.signature === BoltSignature.RECORD) continue;
    assert.equal(reply.signature, BoltSignature.SUCCESS, `${what}: ${describeMessage(reply)}`);
    return;
  }
}

/** A raw client logged in through the proxy that has BEGUN a transaction marked for SHOW TRANSACTIONS. */
async function clientInTransaction(proxy: TestProxy, marker: string, label: string): Promise<RawBoltClient> {
  const client = await loggedInBolt58(proxy.proxy.address, {
    userAgent: 'pooling-kill-test/1.0',
    username: server.username,
    password: server.password,
  });
  client.write(
    Buffer.concat([
      message(BoltSignature.BEGIN, map({ tx_metadata: map({ pooltest: marker }) })),
      message(BoltSignature.RUN, `CREATE (:${label} {marker: $marker})`, map({ marker }), map({})),
      message(BoltSignature.PULL, map({ n: -1 })),
    ]),
  );
  await expectSuccess(client, 'BEGIN');
  await expectSuccess(client, 'RUN');
  await expectSuccess(client, 'PULL');
  return client;
}

/** The upstream's Neo4j connection id, read from the server by the transaction's marker. */
async function connectionOfMarkedTransaction(marker: string): Promise<string> {
  const { records } = await observer.executeQuery(
    'SHOW TRANSACTIONS YIELD connectionId, metaData WHERE metaData.pooltest = $marker RETURN connectionId',
    { marker },
  );
  assert.equal(records.length, 1, 'the transaction is open on the server before the client dies');
  return String(records[0]?.get('connectionId'));
}

/** After the client died: nothing committed, no transaction left, and the next client works cleanly. */
async function expectCleanAfterKill(proxy: TestProxy, marker: string, label: string, upstreamId: string) {
  await eventually(async () => {
    assert.deepEqual(await openTransactionsMarked(observer, marker), []);
    assert.deepEqual(await openTransactionsOn(observer, upstreamId), []);
  }, 15_000);
  const { records } = await observer.executeQuery(`MATCH (n:${label}) RETURN count(n) AS created`);
  assert.equal(records[0]?.get('created').toNumber(), 0, 'the dead client committed nothing');

  // The one pooled slot goes to the next client: a transaction of its own, its own results only.
  const token = neo4j.auth.basic(server.username, server.password);
  const next = await perTask(proxy.boltUri, token, async (driver) => {
    const session = driver.session();
    try {
      return await session.executeWrite(async (tx) => {
        const own = await ownTransaction(tx);
        const echoed = await tx.run('RETURN $value AS value', { value: marker });
        return { own, values: echoed.records.map((record) => record.get('value')) };
      });
    } finally {
      await session.close();
    }
  });
  assert.deepEqual(next.values, [marker]);
  assert.match(next.own.connectionId, /^bolt-/);
}

for (const mode of MODES) {
  describe(`pooling ${mode}: a client killed with work half done`, { timeout: 120_000 }, () => {
    let proxy: TestProxy;
    before(async () => {
      // One upstream: whatever the dead client left on it, the next client would meet.
      proxy = await startTestProxy(server.uri, { pooling: { mode, maxUpstreams: 1 } });
    });
    after(async () => {
      await proxy?.stop();
    });

    test('killed inside an open transaction', async () => {
      const marker = randomUUID();
      const label = `KilledInTx${marker.replaceAll('-', '')}`;
      const client = await clientInTransaction(proxy, marker, label);
      const upstreamId = await connectionOfMarkedTransaction(marker);
      client.close();
      await expectCleanAfterKill(proxy, marker, label, upstreamId);
    });

    test('killed in the middle of a result stream', async () => {
      const marker = randomUUID();
      const label = `KilledMidStream${marker.replaceAll('-', '')}`;
      const client = await clientInTransaction(proxy, marker, label);
      const upstreamId = await connectionOfMarkedTransaction(marker);
      // ~20 MB of rows: far more than the socket buffers hold, so Neo4j is still streaming at the kill.
      client.write(
        Buffer.concat([
          message(
            BoltSignature.RUN,
            'UNWIND range(1, 200000) AS i RETURN i, $pad AS pad',
            map({ pad: 'x'.repeat(100) }),
            map({}),
          ),
          message(BoltSignature.PULL, map({ n: -1 })),
        ]),
      );
      await expectSuccess(client, 'RUN of the stream');
      for (let row = 0; row < 50; row++) {
        const record = await client.readMessage();
        assert.equal(record.signature, BoltSignature.RECORD, describeMessage(record));
      }
      client.close();
      await expectCleanAfterKill(proxy, marker, label, upstreamId);
    });

    test('killed in the middle of a chunk (half a COMMIT, then half a RUN)', async () => {
      const marker = randomUUID();
      const label = `KilledMidChunk${marker.replaceAll('-', '')}`;
      const client = await clientInTransaction(proxy, marker, label);
      const upstreamId = await connectionOfMarkedTransaction(marker);
      const commit = message(BoltSignature.COMMIT);
      // Chunk header and the struct marker of COMMIT, not its signature or the end marker.
      client.write(commit.subarray(0, 3));
      // Let the bytes reach the proxy (and whatever it does with them) before the client dies.
      await new Promise((resolve) => setTimeout(resolve, 200));
      client.close();
      await expectCleanAfterKill(proxy, marker, label, upstreamId);

      const second = `${marker}-2`;
      const secondLabel = `${label}Second`;
      const client2 = await clientInTransaction(proxy, second, secondLabel);
      const upstream2 = await connectionOfMarkedTransaction(second);
      const run = message(BoltSignature.RUN, `CREATE (:${secondLabel} {n: 2})`, map({}), map({}));
      client2.write(run.subarray(0, Math.floor(run.length / 2)));
      await new Promise((resolve) => setTimeout(resolve, 200));
      client2.close();
      await expectCleanAfterKill(proxy, second, secondLabel, upstream2);
    });
  });
}
