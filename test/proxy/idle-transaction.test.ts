/**
 * proxy.idleTransactionTimeoutMs against the real Neo4j with the real JS driver, in every pooling mode:
 * a client that began a transaction, wrote (locking a node) and went silent with its socket open is
 * closed with a TransactionTimedOut FAILURE, its write rolled back, and a writer blocked on its lock
 * (silent as long, but awaiting a reply) proceeds and commits; with the default the timeout leaves a
 * transaction whose worker computes between its queries alone.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import neo4j, { type Driver, type Neo4jError } from 'neo4j-driver';
import { configSchema } from '../../src/config/index.ts';
import { IDLE_TRANSACTION_TIMEOUT_CODE } from '../../src/proxy/index.ts';
import { closeSharedNeo4j, openSharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { quiet } from './pooling-support.ts';
import { eventually, startTestProxy } from './support.ts';

const MODES = ['off', 'session', 'transaction'] as const;
const TIMEOUTS = 'neo4j_proxy_idle_transaction_timeouts_total';

let server: TestNeo4j;
let direct: Driver;

before(async () => {
  ({ server, driver: direct } = await openSharedNeo4j(quiet));
});
after(() => closeSharedNeo4j(direct));

async function nodeOf(key: string): Promise<{ v: unknown; w: unknown; written: number }> {
  const { records } = await direct.executeQuery(
    'MATCH (n:IdleTxLock {key: $key}) OPTIONAL MATCH (m:IdleTxWrite {key: $key}) RETURN n.v AS v, n.w AS w, count(m) AS written',
    { key },
  );
  const record = records[0];
  assert.ok(record, `no IdleTxLock node ${key}`);
  return { v: record.get('v'), w: record.get('w'), written: Number(record.get('written')) };
}

describe('idle-in-transaction timeout', () => {
  for (const mode of MODES) {
    it(`${mode}: rolls back a silent transaction, fails its client and lets the writer it blocked proceed`, async () => {
      const proxy = await startTestProxy(server.uri, { pooling: { mode }, idleTransactionTimeoutMs: 1000 });
      const clientDriver = (userAgent: string) =>
        neo4j.driver(proxy.boltUri, neo4j.auth.basic(server.username, server.password), { ...quiet, userAgent });
      const silent = clientDriver('idle-tx-silent/1.0');
      const blocked = clientDriver('idle-tx-blocked/1.0');
      const key = randomUUID();
      try {
        await direct.executeQuery('CREATE (:IdleTxLock {key: $key})', { key });
        const silentSession = silent.session();
        const silentTx = await silentSession.beginTransaction();
        await silentTx.run('MATCH (n:IdleTxLock {key: $key}) SET n.v = 1 CREATE (:IdleTxWrite {key: $key})', { key });

        // Silent from here on too, but waiting for its reply: blocked on the silent client's lock.
        const blockedSession = blocked.session();
        const blockedTx = await blockedSession.beginTransaction();
        const blockedWrite = blockedTx.run('MATCH (n:IdleTxLock {key: $key}) SET n.w = 2 RETURN n.w AS w', { key });

        const { records } = await blockedWrite;
        assert.equal(Number(records[0]?.get('w')), 2);
        await blockedTx.commit();
        await blockedSession.close();

        await assert.rejects(silentTx.run('RETURN 1'), (error: Neo4jError) => {
          assert.equal(error.code, IDLE_TRANSACTION_TIMEOUT_CODE, String(error));
          assert.match(error.message, /proxy\.idleTransactionTimeoutMs/);
          return true;
        });
        await silentSession.close().catch(() => {});

        assert.deepEqual(await nodeOf(key), { v: null, w: neo4j.int(2), written: 0 });
        assert.equal(await proxy.metric(TIMEOUTS), 1, 'only the silent client, not the one awaiting a reply');
        assert.equal(await proxy.metric(TIMEOUTS, { user_agent: 'unknown' }), 0);
        await eventually(
          async () =>
            assert.equal(
              await proxy.metric('neo4j_proxy_client_connections_closed_total', {
                reason: 'idle_transaction_timeout',
              }),
              1,
            ),
          10_000,
        );
        // The upstream it held was rolled back and is usable: the next transaction through the proxy works.
        const after = await blocked.executeQuery('MATCH (n:IdleTxLock {key: $key}) RETURN n.w AS w', { key });
        assert.equal(Number(after.records[0]?.get('w')), 2);
      } finally {
        await silent.close();
        await blocked.close();
        await proxy.stop();
      }
    });
  }

  it('with the default, leaves a transaction alone while its worker computes between queries', async () => {
    const defaults = configSchema.parse({}).proxy;
    assert.ok(defaults.idleTransactionTimeoutMs > 0, 'on by default');
    const proxy = await startTestProxy(server.uri, {
      pooling: { mode: 'transaction' },
      idleTransactionTimeoutMs: defaults.idleTransactionTimeoutMs,
    });
    const driver = neo4j.driver(proxy.boltUri, neo4j.auth.basic(server.username, server.password), quiet);
    const key = randomUUID();
    try {
      await direct.executeQuery('CREATE (:IdleTxLock {key: $key})', { key });
      const written = await driver.executeQuery('RETURN 1 AS one');
      assert.equal(Number(written.records[0]?.get('one')), 1);
      const session = driver.session();
      try {
        await session.executeWrite(async (tx) => {
          await tx.run('MATCH (n:IdleTxLock {key: $key}) SET n.v = 1', { key });
          // A worker computing between two queries of its transaction.
          await new Promise((resolve) => setTimeout(resolve, 2000));
          await tx.run('CREATE (:IdleTxWrite {key: $key})', { key });
        });
      } finally {
        await session.close();
      }
      assert.deepEqual(await nodeOf(key), { v: neo4j.int(1), w: null, written: 1 });
      assert.equal(await proxy.metric(TIMEOUTS), 0);
    } finally {
      await driver.close();
      await proxy.stop();
    }
  });
});
