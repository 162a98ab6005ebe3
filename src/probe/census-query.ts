/**
 * The census's questions to the server, asked on the sidecar's own pooled driver: who the census
 * user is (which decides what it may see), `CALL dbms.listConnections()` and `SHOW TRANSACTIONS`.
 * The answers come back as plain rows for census-analysis.ts.
 *
 * Visibility: Community edition shows every user all connections and transactions; on Enterprise only
 * admins do.
 */
import type { Driver } from 'neo4j-driver';
import type { CensusVisibility, ListedConnection, ListedTransaction } from './census-analysis.ts';

/** Marks the census's own transactions so SHOW TRANSACTIONS can leave them out. */
const OWN_TRANSACTION_METADATA = { app: 'neo4j-pool-sidecar', purpose: 'census' };

const LIST_CONNECTIONS = `CALL dbms.listConnections()
YIELD connectionId, connectTime, connector, username, userAgent, clientAddress
RETURN connectionId, connector, username, userAgent, clientAddress,
       datetime(connectTime).epochMillis AS connectedAtMs, datetime().epochMillis AS serverNowMs`;
const LIST_TRANSACTIONS = `SHOW TRANSACTIONS
YIELD database, transactionId, username, connectionId, status, elapsedTime, metaData
WHERE coalesce(metaData.purpose, '') <> 'census' OR coalesce(metaData.app, '') <> 'neo4j-pool-sidecar'
RETURN database, transactionId, username, connectionId, status, elapsedTime.milliseconds AS elapsedMs`;
const CURRENT_USER = 'SHOW CURRENT USER YIELD user, roles';

export interface CensusListing {
  who: { user: string | undefined; visibility: CensusVisibility };
  connections: ListedConnection[];
  transactions: ListedTransaction[];
}

function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (value && typeof (value as { toNumber?: unknown }).toNumber === 'function') {
    return (value as { toNumber(): number }).toNumber();
  }
  return Number.NaN;
}

function toText(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

export async function listServer(driver: Driver, timeoutMs: number): Promise<CensusListing> {
  const session = driver.session({ database: 'system', defaultAccessMode: 'READ' });
  try {
    const query = async (cypher: string): Promise<Array<Record<string, unknown>>> => {
      const result = await session.run(cypher, {}, { metadata: OWN_TRANSACTION_METADATA, timeout: timeoutMs });
      return result.records.map((record) => record.toObject() as Record<string, unknown>);
    };
    const who = await currentUser(query);
    const connections = (await query(LIST_CONNECTIONS)).map(
      (row): ListedConnection => ({
        connectionId: toText(row.connectionId),
        connector: toText(row.connector),
        username: toText(row.username),
        userAgent: toText(row.userAgent),
        clientAddress: toText(row.clientAddress),
        connectedAtMs: toNumber(row.connectedAtMs),
        serverNowMs: toNumber(row.serverNowMs),
      }),
    );
    const transactions = (await query(LIST_TRANSACTIONS)).map(
      (row): ListedTransaction => ({
        transactionId: toText(row.transactionId),
        database: toText(row.database),
        username: toText(row.username),
        connectionId: toText(row.connectionId),
        status: toText(row.status),
        elapsedMs: toNumber(row.elapsedMs),
      }),
    );
    return { who, connections, transactions };
  } finally {
    await session.close();
  }
}

async function currentUser(
  query: (cypher: string) => Promise<Array<Record<string, unknown>>>,
): Promise<CensusListing['who']> {
  try {
    const [row] = await query(CURRENT_USER);
    const user = toText(row?.user) || undefined;
    const roles = row?.roles;
    // Community edition has no roles (null) and lets every user list every connection.
    if (roles === null || roles === undefined) return { user, visibility: 'all' };
    if (Array.isArray(roles) && roles.includes('admin')) return { user, visibility: 'all' };
    return { user, visibility: 'own-user-only' };
  } catch {
    return { user: undefined, visibility: 'unknown' };
  }
}
