/**
 * The server's own view of who is connected, from Neo4j Community's `CALL dbms.listConnections()`
 * and `SHOW TRANSACTIONS`: connections by connector, user-agent family and client host, their ages,
 * connections opened since the previous census, and transactions open too long.
 *
 * New connections are counted from the server's connection ids (`bolt-1234`): one counter shared by
 * every connector, so the gap between the highest id of two censuses is every connection opened in
 * between, including the short-lived ones that closed before a census could see them. The census
 * probe runs on a connection opened for it (probes.ts), so the highest id listed is the server's
 * current one and nothing opened before the census is left for the next. The sidecar's own
 * connections (its pool, the fresh-connect and census connections) are subtracted.
 *
 * Visibility: Community edition shows every user all connections and transactions; on Enterprise only
 * admins do. The census says which applies (status and `neo4j_census_sees_all_connections`).
 */
import type { Driver, Session } from 'neo4j-driver';
import { CONNECTION_AGE_BUCKETS_SECONDS, census as censusMetrics } from '../metrics/catalogue.ts';
import type { Recorder } from '../metrics/recorder.ts';
import { userAgentFamily } from '../proxy/bolt/user-agent.ts';

export interface CensusOptions {
  recorder: Recorder;
  /** Client hosts reported by name; the rest are summed as `other`. */
  topClientHosts: number;
  /** Transactions open longer than this are counted and listed. */
  longTransactionSeconds: number;
  /** Running total of connections the sidecar itself opened to the server; excluded from "opened". */
  ownConnectionsOpened: () => number;
  /** Server-side transaction timeout of the census queries. */
  timeoutMs: number;
}

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

/** Marks the census's own transactions so SHOW TRANSACTIONS can leave them out. */
const OWN_TRANSACTION_METADATA = { app: 'neo4j-pool-sidecar', purpose: 'census' };
const UNSEEN_CONNECTOR = 'closed_before_census';
const OWN_FAMILY = 'neo4j-pool-sidecar';
const LISTED_TRANSACTIONS = 10;

const LIST_CONNECTIONS = `CALL dbms.listConnections()
YIELD connectionId, connectTime, connector, username, userAgent, clientAddress
RETURN connectionId, connector, username, userAgent, clientAddress,
       datetime(connectTime).epochMillis AS connectedAtMs, datetime().epochMillis AS serverNowMs`;
const LIST_TRANSACTIONS = `SHOW TRANSACTIONS
YIELD database, transactionId, username, connectionId, status, elapsedTime, metaData
WHERE coalesce(metaData.purpose, '') <> 'census' OR coalesce(metaData.app, '') <> 'neo4j-pool-sidecar'
RETURN database, transactionId, username, connectionId, status, elapsedTime.milliseconds AS elapsedMs`;
const CURRENT_USER = 'SHOW CURRENT USER YIELD user, roles';

interface ConnectionRow {
  id: number | undefined;
  connector: string;
  username: string;
  family: string;
  host: string;
  ageSeconds: number;
  /** With the id, identifies a connection across censuses: ids alone repeat after a server restart. */
  connectedAtMs: number;
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

function quantile(sorted: readonly number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

function increment(record: Record<string, number>, key: string, by = 1): void {
  record[key] = (record[key] ?? 0) + by;
}

export class Census {
  /** highWater: the highest connection id seen since the server (re)started; open: the connections open at the last census. */
  private previous: { highWater: number; open: ReadonlySet<string>; own: number; at: number } | undefined;
  private lastReport: CensusReport | undefined;
  private readonly reported = {
    connections: new Set<string>(),
    hosts: new Set<string>(),
    databases: new Set<string>(),
  };

  constructor(private readonly options: CensusOptions) {}

  get last(): CensusReport | undefined {
    return this.lastReport;
  }

  async run(driver: Driver): Promise<CensusReport> {
    const session = driver.session({ database: 'system', defaultAccessMode: 'READ' });
    try {
      const who = await this.currentUser(session);
      const connectionRecords = await this.query(session, LIST_CONNECTIONS);
      const transactionRecords = await this.query(session, LIST_TRANSACTIONS);
      const analysis = this.analyse(who, connectionRecords, transactionRecords);
      this.publish(analysis);
      this.lastReport = analysis.report;
      return analysis.report;
    } finally {
      await session.close();
    }
  }

  /** Drops every census series (the census stopped; stale numbers would mislead). */
  clear(): void {
    const recorder = this.options.recorder;
    for (const key of this.reported.connections) {
      recorder.gauge(censusMetrics.connections).remove(pairLabels(key));
    }
    for (const host of this.reported.hosts)
      recorder.gauge(censusMetrics.clientConnections).remove({ client_host: host });
    for (const database of this.reported.databases) {
      recorder.gauge(censusMetrics.longTransactions).remove({ database });
      recorder.gauge(censusMetrics.oldestTransaction).remove({ database });
    }
    for (const le of AGE_BUCKET_LABELS) recorder.gauge(censusMetrics.connectionsByAge).remove({ le });
    recorder.gauge(censusMetrics.seesAllConnections).remove({});
    this.reported.connections.clear();
    this.reported.hosts.clear();
    this.reported.databases.clear();
  }

  private async query(session: Session, cypher: string): Promise<Array<Record<string, unknown>>> {
    const result = await session.run(
      cypher,
      {},
      { metadata: OWN_TRANSACTION_METADATA, timeout: this.options.timeoutMs },
    );
    return result.records.map((record) => record.toObject() as Record<string, unknown>);
  }

  private async currentUser(session: Session): Promise<{ user: string | undefined; visibility: CensusVisibility }> {
    try {
      const [row] = await this.query(session, CURRENT_USER);
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

  private analyse(
    who: { user: string | undefined; visibility: CensusVisibility },
    connectionRecords: Array<Record<string, unknown>>,
    transactionRecords: Array<Record<string, unknown>>,
  ): Analysis {
    const now = Date.now();
    const rows: ConnectionRow[] = connectionRecords.map((record) => {
      const serverNow = toNumber(record.serverNowMs);
      const connectedAt = toNumber(record.connectedAtMs);
      return {
        id: connectionIdNumber(toText(record.connectionId)),
        connector: toText(record.connector) || 'unknown',
        username: toText(record.username),
        family: userAgentFamily(toText(record.userAgent)),
        host: clientHost(toText(record.clientAddress)),
        ageSeconds: Number.isFinite(serverNow - connectedAt) ? Math.max(0, (serverNow - connectedAt) / 1000) : 0,
        connectedAtMs: connectedAt,
      };
    });

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
      .slice(0, this.options.topClientHosts)
      .map(([host, connections]) => ({ host, connections }));
    const otherHosts = rankedHosts.slice(this.options.topClientHosts).reduce((sum, [, count]) => sum + count, 0);
    if (otherHosts > 0) byClientHost.push({ host: OTHER_HOSTS, connections: otherHosts });

    const ages = rows.map((row) => row.ageSeconds).sort((a, b) => a - b);
    const atMost: Record<string, number> = {};
    for (const le of CONNECTION_AGE_BUCKETS_SECONDS) atMost[String(le)] = ages.filter((age) => age <= le).length;
    atMost['+Inf'] = ages.length;

    const { openedByConnector, ...opened } = this.countOpened(rows, now);

    const transactions: LongTransaction[] = transactionRecords.map((record) => ({
      transactionId: toText(record.transactionId),
      database: toText(record.database) || 'unknown',
      username: toText(record.username),
      connectionId: toText(record.connectionId),
      status: toText(record.status),
      elapsedSeconds: Math.max(0, toNumber(record.elapsedMs) / 1000 || 0),
    }));
    transactions.sort((a, b) => b.elapsedSeconds - a.elapsedSeconds);
    const longRunning = transactions.filter((tx) => tx.elapsedSeconds > this.options.longTransactionSeconds);
    const transactionsByDatabase = new Map<string, { long: number; oldest: number }>();
    for (const tx of transactions) {
      const entry = transactionsByDatabase.get(tx.database) ?? { long: 0, oldest: 0 };
      entry.oldest = Math.max(entry.oldest, tx.elapsedSeconds);
      if (tx.elapsedSeconds > this.options.longTransactionSeconds) entry.long++;
      transactionsByDatabase.set(tx.database, entry);
    }

    const report: CensusReport = {
      at: new Date(now).toISOString(),
      user: who.user,
      ...describeVisibility(who, rows),
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
    return { report, pairs, openedByConnector, transactionsByDatabase };
  }

  private countOpened(
    rows: readonly ConnectionRow[],
    now: number,
  ): CensusReport['opened'] & { openedByConnector: Record<string, number> } {
    const ids = rows.map((row) => row.id).filter((id): id is number => id !== undefined);
    const maxId = ids.length > 0 ? Math.max(...ids) : -1;
    const own = this.options.ownConnectionsOpened();
    const previous = this.previous;
    // Ids restart at 0 when the server restarts. A lower highest open id alone does not mean that:
    // the newest connections may simply have closed. Only when none of the connections open last
    // time survives (the sidecar's own pooled connection normally does) is it a new server.
    const open = new Set(rows.map((row) => `${row.id}@${row.connectedAtMs}`));
    const restarted =
      previous !== undefined && maxId < previous.highWater && ![...open].some((key) => previous.open.has(key));
    const highWater = previous === undefined || restarted ? maxId : Math.max(previous.highWater, maxId);
    this.previous = { highWater, open, own, at: now };
    if (!previous) {
      return {
        sinceLastCensus: 0,
        stillOpen: 0,
        closedBeforeCensus: 0,
        intervalSeconds: undefined,
        perSecond: undefined,
        openedByConnector: {},
      };
    }
    const intervalSeconds = (now - previous.at) / 1000;
    // Every id above the previous high-water mark is a connection opened since; those that already
    // closed are the gap the open ones do not explain. Run on a connection of its own, the census's
    // highest id is the newest; run on a pooled one, closed connections above the highest open id are
    // counted only once a newer connection shows how far the ids went.
    const since = restarted ? -1 : previous.highWater;
    const gap = Math.max(0, maxId - since);
    const ownOpened = Math.max(0, own - previous.own);
    const openedByConnector: Record<string, number> = {};
    let stillOpen = 0;
    for (const row of rows) {
      if (row.id === undefined || row.id <= since || row.family.split('/', 1)[0] === OWN_FAMILY) continue;
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
      openedByConnector,
    };
  }

  private publish(analysis: Analysis): void {
    const recorder = this.options.recorder;
    const { report } = analysis;

    const connections = recorder.gauge(censusMetrics.connections);
    for (const [key, count] of analysis.pairs) connections.set(pairLabels(key), count);
    for (const key of this.reported.connections) if (!analysis.pairs.has(key)) connections.remove(pairLabels(key));
    this.reported.connections = new Set(analysis.pairs.keys());

    const hosts = recorder.gauge(censusMetrics.clientConnections);
    const seenHosts = new Set(report.connections.byClientHost.map((entry) => entry.host));
    for (const { host, connections: count } of report.connections.byClientHost) hosts.set({ client_host: host }, count);
    for (const host of this.reported.hosts) if (!seenHosts.has(host)) hosts.remove({ client_host: host });
    this.reported.hosts = seenHosts;

    const byAge = recorder.gauge(censusMetrics.connectionsByAge);
    for (const [le, count] of Object.entries(report.age.atMost)) byAge.set({ le }, count);

    const opened = recorder.counter(censusMetrics.connectionsOpened);
    // Binding creates the series at zero on the first census, so increase() sees the first burst too.
    for (const connector of [UNSEEN_CONNECTOR, ...Object.keys(report.connections.byConnector)]) {
      opened.bind({ connector });
    }
    for (const [connector, count] of Object.entries(analysis.openedByConnector)) opened.inc({ connector }, count);
    opened.inc({ connector: UNSEEN_CONNECTOR }, report.opened.closedBeforeCensus);

    recorder.gauge(censusMetrics.seesAllConnections).set({}, report.visibility === 'all' ? 1 : 0);

    // A database whose transactions all finished reports 0, not its last value.
    const longGauge = recorder.gauge(censusMetrics.longTransactions);
    const oldestGauge = recorder.gauge(censusMetrics.oldestTransaction);
    for (const database of new Set([...this.reported.databases, ...analysis.transactionsByDatabase.keys()])) {
      const entry = analysis.transactionsByDatabase.get(database) ?? { long: 0, oldest: 0 };
      longGauge.set({ database }, entry.long);
      oldestGauge.set({ database }, entry.oldest);
      this.reported.databases.add(database);
    }
  }
}

interface Analysis {
  report: CensusReport;
  /** Open connections per connector and user-agent family pair (pairKey). */
  pairs: Map<string, number>;
  openedByConnector: Record<string, number>;
  transactionsByDatabase: Map<string, { long: number; oldest: number }>;
}

const OTHER_HOSTS = 'other';
const AGE_BUCKET_LABELS = [...CONNECTION_AGE_BUCKETS_SECONDS.map(String), '+Inf'];

function pairKey(connector: string, family: string): string {
  return `${connector}\u0000${family}`;
}

function pairLabels(key: string): { connector: string; user_agent_family: string } {
  const [connector = '', family = ''] = key.split('\u0000');
  return { connector, user_agent_family: family };
}

function describeVisibility(
  who: { user: string | undefined; visibility: CensusVisibility },
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
