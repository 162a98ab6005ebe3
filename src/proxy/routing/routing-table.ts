/**
 * A cluster's routing table as the proxy keeps it, the way the drivers keep theirs: the ROUTE request
 * that fetches it (Bolt 4.3 and 4.4+ field shapes), the SUCCESS `rt` map it comes back in, when it
 * expires, and members leaving it when they fail. Addresses are `host:port` strings as Neo4j wrote them.
 */
import {
  BoltSignature,
  type BoltVersion,
  chunkMessage,
  encodePackStream,
  type PackStreamMap,
  PackStreamStruct,
  type PackStreamValue,
} from '../bolt/index.ts';

export type MemberRole = 'writer' | 'reader' | 'router';
export const MEMBER_ROLES: readonly MemberRole[] = ['writer', 'reader', 'router'];

export interface RoutingTable {
  /** The database the table routes; the home database resolved by Neo4j when ROUTE named none. */
  readonly database: string;
  readonly ttlMs: number;
  readonly fetchedAtMs: number;
  readonly writers: readonly string[];
  readonly readers: readonly string[];
  readonly routers: readonly string[];
}

/** Neo4j's answer to ROUTE could not be read as a routing table. */
export class RoutingTableError extends Error {
  override readonly name = 'RoutingTableError';
}

/** Drivers treat a TTL this long as "forever"; the proxy caps it so a table is re-read at least daily. */
const MAX_TTL_MS = 24 * 3600 * 1000;
const ROLE_OF: Readonly<Record<string, MemberRole>> = { WRITE: 'writer', READ: 'reader', ROUTE: 'router' };

/**
 * ROUTE for `database` (null: the user's home database, resolved by Neo4j). The routing context is the
 * seed URI's query parameters plus its `address`, as drivers send it; bookmarks are left empty, since
 * the table is shared by every client of the proxy and the database is waited for at BEGIN anyway.
 */
export function routeRequest(
  version: BoltVersion,
  context: ReadonlyMap<string, string>,
  database: string | null,
  impersonatedUser: string | null = null,
): Buffer {
  const routing: PackStreamMap = new Map(context);
  const bookmarks: PackStreamValue[] = [];
  const entries: [string, PackStreamValue][] = [];
  if (database !== null) entries.push(['db', database]);
  if (impersonatedUser !== null) entries.push(['imp_user', impersonatedUser]);
  const extra: PackStreamValue =
    version.major > 4 || (version.major === 4 && version.minor >= 4) ? new Map(entries) : database;
  return chunkMessage(encodePackStream(new PackStreamStruct(BoltSignature.ROUTE, [routing, bookmarks, extra])));
}

/** Whether ROUTE exists at this version (Bolt 4.3+); before it the routing procedure is the only way. */
export function speaksRoute(version: BoltVersion): boolean {
  return version.major > 4 || (version.major === 4 && version.minor >= 3);
}

/** The table in a ROUTE SUCCESS's metadata; throws RoutingTableError when it is not one. */
export function parseRoutingTable(
  metadata: PackStreamMap | null,
  requested: string | null,
  nowMs: number,
): RoutingTable {
  const rt = metadata?.get('rt');
  if (!(rt instanceof Map)) throw new RoutingTableError('the ROUTE reply has no rt map');
  const ttl = rt.get('ttl');
  const ttlSeconds = typeof ttl === 'bigint' ? Number(ttl) : typeof ttl === 'number' ? ttl : Number.NaN;
  if (!Number.isFinite(ttlSeconds) || ttlSeconds < 0) throw new RoutingTableError('the routing table has no valid ttl');
  const servers = rt.get('servers');
  if (!Array.isArray(servers)) throw new RoutingTableError('the routing table has no servers list');
  const byRole: Record<MemberRole, string[]> = { writer: [], reader: [], router: [] };
  for (const entry of servers) {
    if (!(entry instanceof Map)) throw new RoutingTableError('a routing table entry is not a map');
    const role = ROLE_OF[String(entry.get('role'))];
    const addresses = entry.get('addresses');
    if (role === undefined || !Array.isArray(addresses)) continue;
    for (const address of addresses) {
      if (typeof address !== 'string' || !isAddress(address))
        throw new RoutingTableError('a routing table address is not host:port');
      if (!byRole[role].includes(address)) byRole[role].push(address);
    }
  }
  const db = rt.get('db');
  return {
    database: typeof db === 'string' ? db : (requested ?? ''),
    ttlMs: Math.min(ttlSeconds * 1000, MAX_TTL_MS),
    fetchedAtMs: nowMs,
    writers: byRole.writer,
    readers: byRole.reader,
    routers: byRole.router,
  };
}

export function isExpired(table: RoutingTable, nowMs: number): boolean {
  return nowMs >= table.fetchedAtMs + table.ttlMs;
}

/** The table without `address` in any role (it failed), as drivers forget a member until the next refresh. */
export function withoutMember(table: RoutingTable, address: string): RoutingTable {
  return {
    ...table,
    writers: table.writers.filter((member) => member !== address),
    readers: table.readers.filter((member) => member !== address),
    routers: table.routers.filter((member) => member !== address),
  };
}

/** The table without `address` as writer (it said it is not the leader); it may still serve reads. */
export function withoutWriter(table: RoutingTable, address: string): RoutingTable {
  return { ...table, writers: table.writers.filter((member) => member !== address) };
}

/** Splits `host:port` (IPv6 in brackets) ; null when it is not one. */
export function splitAddress(address: string): { host: string; port: number } | null {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address);
  if (match === null) return null;
  const port = Number(match[3]);
  if (port < 1 || port > 65535) return null;
  return { host: (match[1] ?? match[2]) as string, port };
}

function isAddress(address: string): boolean {
  return splitAddress(address) !== null;
}
