/**
 * Helpers of the pooled-mode suites (pooling-*.test.ts): per-task drivers, Neo4j's own id of the
 * connection a query runs on, and what Neo4j says about its open transactions.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import neo4j, { type AuthToken, type Driver, type ManagedTransaction, type Transaction } from 'neo4j-driver';

export const quiet = { logging: { level: 'error' as const, logger: () => {} } };

/** One driver for one task, as a per-task worker opens it, closed when the task is done. */
export async function perTask<T>(
  uri: string,
  token: AuthToken,
  work: (driver: Driver) => Promise<T>,
  config: Parameters<typeof neo4j.driver>[2] = {},
): Promise<T> {
  const driver = neo4j.driver(uri, token, { ...quiet, maxConnectionPoolSize: 1, ...config });
  try {
    return await work(driver);
  } finally {
    await driver.close();
  }
}

export interface ServerSideTransaction {
  /** Neo4j's id of the Bolt connection, e.g. bolt-123. */
  readonly connectionId: string;
  /** Neo4j's id of the transaction, e.g. neo4j-transaction-456. */
  readonly transactionId: string;
}

const SHOW_OWN_TRANSACTION =
  'SHOW TRANSACTIONS YIELD connectionId, transactionId, currentQuery WHERE currentQuery CONTAINS $marker ' +
  'RETURN connectionId, transactionId';

/**
 * The connection and transaction this very query runs in, as Neo4j lists them: the query finds itself
 * in SHOW TRANSACTIONS by a marker only it contains.
 */
export async function ownTransaction(
  runner: Driver | Transaction | ManagedTransaction,
): Promise<ServerSideTransaction> {
  const marker = `own-tx-${randomUUID()}`;
  const query = `${SHOW_OWN_TRANSACTION} // ${marker}`;
  const records =
    'executeQuery' in runner
      ? (await runner.executeQuery(query, { marker })).records
      : (await runner.run(query, { marker })).records;
  assert.equal(records.length, 1, `SHOW TRANSACTIONS found ${records.length} transactions with the marker`);
  return {
    connectionId: String(records[0]?.get('connectionId')),
    transactionId: String(records[0]?.get('transactionId')),
  };
}

/** Transactions open on the server whose metadata carries this marker (set with BEGIN's tx_metadata). */
export async function openTransactionsMarked(observer: Driver, marker: string): Promise<string[]> {
  const { records } = await observer.executeQuery(
    'SHOW TRANSACTIONS YIELD transactionId, metaData WHERE metaData.pooltest = $marker RETURN transactionId',
    { marker },
  );
  return records.map((record) => String(record.get('transactionId')));
}

/** Transactions open on one Neo4j connection. */
export async function openTransactionsOn(observer: Driver, connectionId: string): Promise<string[]> {
  const { records } = await observer.executeQuery(
    'SHOW TRANSACTIONS YIELD transactionId, connectionId WHERE connectionId = $connectionId RETURN transactionId',
    { connectionId },
  );
  return records.map((record) => String(record.get('transactionId')));
}
