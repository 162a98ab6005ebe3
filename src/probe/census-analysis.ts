/**
 * What a census listing means, as a pure function of the listing, the server's connection-id counter
 * and what the previous census remembered: connections by connector, user-agent family and client
 * host, their ages, connections opened since the previous census, and transactions open too long.
 *
 * New connections are counted from the server's connection ids (`bolt-1234`): one counter shared by
 * every connector, so the gap between the newest id of two censuses is every connection opened in
 * between, including the short-lived ones that closed before a census could see them. The counter
 * is read before the listing (connection-counter.ts), so it is the server's current id and nothing
 * opened before the census is left for the next. The sidecar's own connections (its pool, the
 * fresh-connect probe, the counter's own connection) are subtracted.
 */
import { CONNECTION_AGE_BUCKETS_SECONDS } from '../metrics/catalogue.ts';
import { userAgentFamily } from '../metrics/user-agent.ts';

export type CensusVisibility = 'all' | 'own-user-only' | 'unknown';

export interface LongTransaction {
  transactionId: string;
  database: string;
  username: string;
  connectionId: string;
  status: string;
  elapsedSeconds: number;
}

export interface CensusReport {
  at: string;
  user: string | undefined;
  visibility: CensusVisibility;
  /** Set when the census may not see every connection, in words an operator can act on. */
  visibilityNote?: string;
  connections: {
    total: number;
    byConnector: Record<string, number>;
    byUserAgentFamily: Record<string, number>;
    byClientHost: Array<{ host: string; connections: number }>;
  };
  opened: {
    /** Connections opened by others since the previous census (none on the first census). */
    sinceLastCensus: number;
    /** Of those, the ones this census saw still open. */
    stillOpen: number;
    /** Of those, the ones that opened and closed between two censuses: the per-task-driver signature. */
    closedBeforeCensus: number;
    intervalSeconds: number | undefined;
    perSecond: number | undefined;
    /** The server restarted since the previous census: its connection ids started again. */
    serverRestarted: boolean;
  };
  age: {
    medianSeconds: number | undefined;
    p90Seconds: number | undefined;
    maxSeconds: number | undefined;
    /** Open connections at most `le` seconds old, cumulative. */
    atMost: Record<string, number>;
  };
  transactions: {
    open: number;
    longRunning: number;
    oldestSeconds: number;
    /** The longest-running ones (never their query text), oldest first, at most 10. */
    longest: LongTransaction[];
  };
}

/** One row of `dbms.listConnections()`, as the query returns it. */
export interface ListedConnection {
  connectionId: string;
  connector: string;
  username: string;
  userAgent: string;
  clientAddress: string;
  connectedAtMs: number;
  serverNowMs: number;
}

/** One row of `SHOW TRANSACTIONS` (the census's own left out by the query). */
export interface ListedTransaction {
  transactionId: string;
  database: string;
  username: string;
  connectionId: string;
  status: string;
  elapsedMs: number;
}

export interface CensusInput {
  /** When the census ran (ms since the epoch). */
  at: number;
  who: { user: string | undefined; visibility: CensusVisibility };
  connections: readonly ListedConnection[];
  transactions: readonly ListedTransaction[];
  /**
   * The id of the connection that read the server's counter just before the listing; undefined when
   * it could not be read (the newest listed id stands in, and churn after it waits for a later census).
   */
  counter: number | undefined;
  /**
   * Running total of connections the sidecar itself opened to the server (the counter's own among
   * them), read right after the listing.
   */
  ownConnectionsOpened: number;
}

export interface CensusSettings {
  /** Client hosts reported by name; the rest are summed as `other`. */
  topClientHosts: number;
  /** Transactions open longer than this are counted and listed. */
  longTransactionSeconds: number;
}

/** What one census leaves for the next. */
export interface CensusMemory {
  /** The highest connection id known to have been handed out since the server (re)started. */
  readonly highWater: number;
  /** `id@connectedAtMs` of the connections open at this census: ids alone repeat after a restart. */
  readonly open: ReadonlySet<string>;
  readonly own: number;
  readonly at: number;
}

export interface CensusAnalysis {
  report: CensusReport;
  /** Open connections per connector and user-agent family pair (see pairKey). */
  pairs: Map<string, number>;
  openedByConnector: Record<string, number>;
  transactionsByDatabase: Map<string, { long: number; oldest: number }>;
  memory: CensusMemory;
}

export const OWN_FAMILY = 'neo4j-pool-sidecar';
export const OTHER_HOSTS = 'other';
const LISTED_TRANSACTIONS = 10;

interface ConnectionRow {
  id: number | undefined;
  connector: string;
  username: string;
  family: string;
  host: string;
  ageSeconds: number;
  connectedAtMs: number;
}

/** `bolt-1234` → 1234. */
export function connectionIdNumber(connectionId: string): number | undefined {
  const match = /-(\d+)$/.exec(connectionId);
  return match ? Number(match[1]) : undefined;
}

/** `10.0.0.5:51234` → `10.0.0.5`, `[::1]:51234` → `::1`. */
export function clientHost(clientAddress: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(clientAddress);
  if (bracketed) return bracketed[1]!;
  const colons = clientAddress.split(':').length - 1;
  if (colons === 1) return clientAddress.slice(0, clientAddress.lastIndexOf(':'));
  return clientAddress || 'unknown';
}

export function pairKey(connector: string, family: string): string {
  return `${connector}\u0000${family}`;
}

export function pairLabels(key: string): { connector: string; user_agent_family: string } {
  const [connector = '', family = ''] = key.split('\u0000');
  return { connector, user_agent_family: family };
}

function quantile(sorted: readonly number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

function increment(record: Record<string, number>, key: string, by = 1): void {
  record[key] = (record[key] ?? 0) + by;
}

function toRow(listed: ListedConnection): ConnectionRow {
  const age = listed.serverNowMs - listed.connectedAtMs;
  return {
    id: connectionIdNumber(listed.connectionId),
    connector: listed.connector || 'unknown',
    username: listed.username,
    family: userAgentFamily(listed.userAgent),
    host: clientHost(listed.clientAddress),
    ageSeconds: Number.isFinite(age) ? Math.max(0, age / 1000) : 0,
    connectedAtMs: listed.connectedAtMs,
  };
}

export function analyseCensus(
  input: CensusInput,
  previous: CensusMemory | undefined,
  settings: CensusSettings,
): CensusAnalysis {
  // The counter's own connection is closed before the listing; should the server list it still, it
  // is not a client.
  const rows = input.connections.map(toRow).filter((row) => input.counter === undefined || row.id !== input.counter);

  const byConnector: Record<string, number> = {};
  const byUserAgentFamily: Record<string, number> = {};
  const pairs = new Map<string, number>();
  const hostCounts = new Map<string, number>();
  for (const row of rows) {
    increment(byConnector, row.connector);
    increment(byUserAgentFamily, row.family);
    const pair = pairKey(row.connector, row.family);
    pairs.set(pair, (pairs.get(pair) ?? 0) + 1);
    hostCounts.set(row.host, (hostCounts.get(row.host) ?? 0) + 1);
  }
  const rankedHosts = [...hostCounts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const byClientHost = rankedHosts
    .slice(0, settings.topClientHosts)
    .map(([host, connections]) => ({ host, connections }));
  const otherHosts = rankedHosts.slice(settings.topClientHosts).reduce((sum, [, count]) => sum + count, 0);
  if (otherHosts > 0) byClientHost.push({ host: OTHER_HOSTS, connections: otherHosts });

  const ages = rows.map((row) => row.ageSeconds).sort((a, b) => a - b);
  const atMost: Record<string, number> = {};
  for (const le of CONNECTION_AGE_BUCKETS_SECONDS) atMost[String(le)] = ages.filter((age) => age <= le).length;
  atMost['+Inf'] = ages.length;

  const { openedByConnector, memory, ...opened } = countOpened(rows, input, previous);

  const transactions: LongTransaction[] = input.transactions.map((listed) => ({
    transactionId: listed.transactionId,
    database: listed.database || 'unknown',
    username: listed.username,
    connectionId: listed.connectionId,
    status: listed.status,
    elapsedSeconds: Math.max(0, listed.elapsedMs / 1000 || 0),
  }));
  transactions.sort((a, b) => b.elapsedSeconds - a.elapsedSeconds);
  const longRunning = transactions.filter((tx) => tx.elapsedSeconds > settings.longTransactionSeconds);
  const transactionsByDatabase = new Map<string, { long: number; oldest: number }>();
  for (const tx of transactions) {
    const entry = transactionsByDatabase.get(tx.database) ?? { long: 0, oldest: 0 };
    entry.oldest = Math.max(entry.oldest, tx.elapsedSeconds);
    if (tx.elapsedSeconds > settings.longTransactionSeconds) entry.long++;
    transactionsByDatabase.set(tx.database, entry);
  }

  const report: CensusReport = {
    at: new Date(input.at).toISOString(),
    user: input.who.user,
    ...describeVisibility(input.who, rows),
    connections: { total: rows.length, byConnector, byUserAgentFamily, byClientHost },
    opened,
    age: {
      medianSeconds: quantile(ages, 0.5),
      p90Seconds: quantile(ages, 0.9),
      maxSeconds: ages.at(-1),
      atMost,
    },
    transactions: {
      open: transactions.length,
      longRunning: longRunning.length,
      oldestSeconds: transactions[0]?.elapsedSeconds ?? 0,
      longest: longRunning.slice(0, LISTED_TRANSACTIONS),
    },
  };
  return { report, pairs, openedByConnector, transactionsByDatabase, memory };
}

function countOpened(
  rows: readonly ConnectionRow[],
  input: CensusInput,
  previous: CensusMemory | undefined,
): CensusReport['opened'] & { openedByConnector: Record<string, number>; memory: CensusMemory } {
  const ids = rows.map((row) => row.id).filter((id): id is number => id !== undefined);
  const newestListed = ids.length > 0 ? Math.max(...ids) : -1;
  // A connection opened during the listing may be newer than the counter's own.
  const newest = Math.max(newestListed, input.counter ?? -1);
  const open = new Set(rows.map((row) => `${row.id}@${row.connectedAtMs}`));
  const restarted = previous !== undefined && hasRestarted(input.counter, newestListed, open, previous);
  const highWater = previous === undefined || restarted ? newest : Math.max(previous.highWater, newest);
  const memory: CensusMemory = { highWater, open, own: input.ownConnectionsOpened, at: input.at };
  if (!previous) {
    return {
      sinceLastCensus: 0,
      stillOpen: 0,
      closedBeforeCensus: 0,
      intervalSeconds: undefined,
      perSecond: undefined,
      serverRestarted: false,
      openedByConnector: {},
      memory,
    };
  }
  const intervalSeconds = (input.at - previous.at) / 1000;
  // Every id above the previous high-water mark is a connection opened since; those that already
  // closed are the gap the open ones do not explain. After a restart the ids start again from 0.
  const since = restarted ? -1 : previous.highWater;
  const gap = Math.max(0, newest - since);
  const ownOpened = Math.max(0, input.ownConnectionsOpened - previous.own);
  const openedByConnector: Record<string, number> = {};
  let stillOpen = 0;
  // New connections under the sidecar's own agent are this instance's only up to the number it opened
  // itself (less the counter's, which is not listed); beyond that they are other sidecars' (the
  // workers' pools, in a fleet with one census).
  let ownAgentLeft = Math.max(0, ownOpened - (input.counter === undefined ? 0 : 1));
  for (const row of rows) {
    if (row.id === undefined || row.id <= since) continue;
    if (row.family.split('/', 1)[0] === OWN_FAMILY && ownAgentLeft > 0) {
      ownAgentLeft--;
      continue;
    }
    stillOpen++;
    increment(openedByConnector, row.connector);
  }
  const closedBeforeCensus = Math.max(0, gap - ownOpened - stillOpen);
  const sinceLastCensus = stillOpen + closedBeforeCensus;
  return {
    sinceLastCensus,
    stillOpen,
    closedBeforeCensus,
    intervalSeconds,
    perSecond: intervalSeconds > 0 ? sinceLastCensus / intervalSeconds : undefined,
    serverRestarted: restarted,
    openedByConnector,
    memory,
  };
}

/**
 * The counter is a connection opened just now, so it is above every id the same server handed out
 * before: at or below the previous high-water mark, the server is a new one. Without the counter, a
 * lower newest listed id alone proves nothing (the newest connections may just have closed); only
 * when none of the connections open last time survives as well is it taken for a restart.
 */
function hasRestarted(
  counter: number | undefined,
  newestListed: number,
  open: ReadonlySet<string>,
  previous: CensusMemory,
): boolean {
  if (counter !== undefined) return counter <= previous.highWater;
  return newestListed < previous.highWater && ![...open].some((key) => previous.open.has(key));
}

function describeVisibility(
  who: CensusInput['who'],
  rows: readonly ConnectionRow[],
): { visibility: CensusVisibility; visibilityNote?: string } {
  if (who.visibility === 'all') return { visibility: 'all' };
  if (who.visibility === 'own-user-only') {
    return {
      visibility: 'own-user-only',
      visibilityNote: `user ${who.user ?? '(unknown)'} is not an admin: the census sees only its own connections and transactions; run the sidecar as an admin user to see every client`,
    };
  }
  const users = new Set(rows.map((row) => row.username));
  const onlyUser = users.size === 1 ? [...users][0] : undefined;
  return {
    visibility: 'unknown',
    visibilityNote: onlyUser
      ? `every connection listed belongs to ${onlyUser}: either only ${onlyUser} is connected, or ${onlyUser} is not an admin and sees only its own connections`
      : 'could not tell whether the census user may see every connection (SHOW CURRENT USER failed)',
  };
}
