/**
 * Cluster routing for transaction mode (neo4j:// and neo4j+s:// upstreams): keeps a routing table per
 * database as the drivers do (ROUTE to a known router, then the seed; refreshed on expiry, when a role
 * has no member left, and when a writer says it is not one), keeps one UpstreamPool per member, and
 * lends each unit of work an upstream on the member its access mode calls for: the writer for writes,
 * the reader with the fewest upstreams in use for reads. A member that fails leaves the table until a
 * refresh brings it back; while no writer is known, writes are held within proxy.pooling.holdTimeoutMs,
 * as during an outage. Every upstream still logs in with the client's own credentials on its member.
 *
 * The seed pool (the URI's own address) verifies logins (pooled-login.ts) and is the router of last
 * resort; member pools are made on first use with the seed's TLS settings, each member's certificate
 * checked under that member's own name.
 */
import type { Logger } from '../../logger.ts';
import { BoltSignature, type PackStreamMap, type PackStreamValue } from '../bolt/index.ts';
import type { Login } from '../pool/connection-key.ts';
import {
  type CheckoutOptions,
  type HoldOutcome,
  type HoldReason,
  HoldTimeoutError,
  type Lent,
  type PoolClock,
  type Refused,
  type UpstreamPool,
  type UpstreamSpec,
} from '../pool/pool.ts';
import { UpstreamClosedError } from '../pool/pooled-upstream.ts';
import { checkoutVerified, type VerifiedLogin } from '../pool/verified-checkout.ts';
import { formatAddress, type UpstreamTarget } from '../upstream.ts';
import {
  isExpired,
  MEMBER_ROLES,
  type MemberRole,
  parseRoutingTable,
  type RoutingTable,
  RoutingTableError,
  routeRequest,
  speaksRoute,
  splitAddress,
  withoutMember,
  withoutWriter,
} from './routing-table.ts';
import type { UnitRoute } from './unit-route.ts';
import { FailFast, WriterHold } from './waits.ts';

/** Members tried for one unit before it gets a retryable error: a whole small cluster and then some. */
const MAX_MEMBER_FAILURES = 8;

/** Why a table was fetched: a bounded label. */
export type RefreshReason =
  | 'first'
  | 'expired'
  | 'no_writer'
  | 'no_reader'
  | 'no_router'
  | 'not_a_leader'
  | 'forbidden_on_read_only';

/** What the router tells the metrics. */
export interface RoutingObserver {
  tableRefreshed(reason: RefreshReason, outcome: 'ok' | 'failed'): void;
  /** A member left the table for failing (connection refused, reset, unanswered) or for not being the writer. */
  failover(role: MemberRole): void;
  unitRouted(member: string, access: 'read' | 'write'): void;
  /** A write held for want of a writer ended (reason no_writer), as the pool reports its own holds. */
  holdEnded(reason: HoldReason, outcome: HoldOutcome, seconds: number): void;
}

export interface ClusterRouterOptions {
  readonly seed: UpstreamTarget;
  readonly seedPool: UpstreamPool;
  /** A pool of upstreams to `target`, settings as the seed's. */
  readonly createPool: (target: UpstreamTarget) => UpstreamPool;
  readonly observer: RoutingObserver;
  readonly holdTimeoutMs: number;
  readonly clock: PoolClock;
  readonly logger?: Logger | null;
}

/** A unit's upstream and where it came from: released into `pool`, NotALeader reported for `member`. */
export interface RoutedLent {
  readonly lent: Lent;
  readonly pool: UpstreamPool;
  readonly member: string;
  readonly tableKey: string;
}

/** The routers answered ROUTE with a FAILURE (a database that does not exist, say): the client gets it. */
export interface RoutingRefused {
  readonly refused: Refused['refused'];
  readonly routing: true;
}

/** No member of the role a unit needs is reachable: a transient error the drivers' retries wait out. */
export class NoMemberError extends Error {
  override readonly name = 'NoMemberError';
}

export interface MemberView {
  readonly address: string;
  readonly roles: MemberRole[];
  readonly reachable: boolean;
  readonly inUse: number;
}

export interface RoutingView {
  readonly tables: Array<{
    readonly database: string;
    readonly ttlSeconds: number;
    readonly ageSeconds: number;
    readonly writers: readonly string[];
    readonly readers: readonly string[];
    readonly routers: readonly string[];
  }>;
  readonly members: MemberView[];
}

interface TableEntry {
  /** Where it was filed first: a named database's key, or a home-database key until ROUTE resolves it. */
  readonly key: string;
  table: RoutingTable | null;
  /** A refresh is due for this reason (a writer refused a write) at the next unit on this table. */
  due: RefreshReason | null;
  /** The refresh under way for this key: everyone who needs the table waits for the same one. */
  refreshing: Promise<RoutingTable | RoutingRefused> | null;
}

export class ClusterRouter {
  readonly #options: ClusterRouterOptions;
  readonly #seedAddress: string;
  readonly #context: ReadonlyMap<string, string>;
  readonly #tables = new Map<string, TableEntry>();
  /** Home-database keys whose database a ROUTE resolved: they share that database's table from then on. */
  readonly #homeDatabases = new Map<string, string>();
  readonly #pools = new Map<string, UpstreamPool>();
  /** Rotates the starting reader, so readers equally in use take turns. */
  #nextReader = 0;
  #closed = false;
  readonly #writerHolds = new Set<WriterHold>();

  constructor(options: ClusterRouterOptions) {
    this.#options = options;
    this.#seedAddress = formatAddress(options.seed.host, options.seed.port);
    this.#context = routingContext(options.seed);
  }

  /**
   * A client's ROUTE answered from the proxy's own table while it is fresh: the proxy for every role
   * (it routes writes and reads itself, and holds writes while no writer is known), the table's TTL and
   * database. Null when there is no fresh table for it: the ROUTE then goes to a router like any unit
   * (and its answer is rewritten). Saves the cluster a ROUTE per driver refresh: drivers resolving the
   * home database ROUTE every few transactions.
   */
  answerRoute(route: UnitRoute, login: Login, advertisedAddress: string): PackStreamMap | null {
    const table = this.#tables.get(this.#resolve(tableKey(route, login)))?.table;
    if (table === undefined || table === null || isExpired(table, this.#options.clock.now())) return null;
    const proxyOnly = (role: string): PackStreamMap =>
      new Map<string, PackStreamValue>([
        ['addresses', [advertisedAddress]],
        ['role', role],
      ]);
    const rt = new Map<string, PackStreamValue>([
      ['ttl', BigInt(Math.max(1, Math.floor((table.fetchedAtMs + table.ttlMs - this.#options.clock.now()) / 1000)))],
      ['db', table.database],
      ['servers', [proxyOnly('WRITE'), proxyOnly('READ'), proxyOnly('ROUTE')]],
    ]);
    return new Map([['rt', rt]]);
  }

  /** The pool of a member seen so far (the seed's own for the seed address). */
  poolOf(member: string): UpstreamPool | null {
    if (member === this.#seedAddress) return this.#options.seedPool;
    return this.#pools.get(member) ?? null;
  }

  /** Every member pool made so far (not the seed's): maintenance acts on them all. */
  memberPools(): UpstreamPool[] {
    return [...this.#pools.values()];
  }

  /**
   * An upstream for a unit of work on the member its route calls for, logged in as the client. Tries
   * the next member when one cannot be reached; holds writes while no writer is known.
   */
  async checkout(
    route: UnitRoute,
    spec: UpstreamSpec,
    verified: VerifiedLogin,
    options: CheckoutOptions,
  ): Promise<RoutedLent | Refused | RoutingRefused> {
    const key = this.#resolve(tableKey(route, verified.login));
    if (route.access === 'route') {
      // The client's own ROUTE: answered by a router (its table is rewritten to name the proxy).
      const lent = await checkoutVerified(this.#options.seedPool, spec, verified, options);
      if ('refused' in lent) return lent;
      return { lent, pool: this.#options.seedPool, member: this.#seedAddress, tableKey: key };
    }
    let writerHold: WriterHold | null = null;
    try {
      return await this.#checkoutRouted(route.access, key, route, spec, verified, options, () => {
        writerHold ??= this.#holdForWriter(options);
        return writerHold;
      });
    } finally {
      (writerHold as WriterHold | null)?.end('released');
    }
  }

  async #checkoutRouted(
    access: 'read' | 'write',
    key: string,
    route: UnitRoute,
    spec: UpstreamSpec,
    verified: VerifiedLogin,
    options: CheckoutOptions,
    writerHold: () => WriterHold,
  ): Promise<RoutedLent | Refused | RoutingRefused> {
    let readerRefreshed = false;
    let forced: RefreshReason | null = null;
    let failures = 0;
    for (;;) {
      if (this.#closed) throw new UpstreamClosedError('the proxy is shutting down');
      if (failures > MAX_MEMBER_FAILURES)
        throw new NoMemberError(`${failures} members failed in a row for one unit of work; giving up on it`);
      const table = await this.#table(key, route, spec, verified, options, forced);
      if ('refused' in table) return table;
      forced = null;
      const member = this.#pick(table, access);
      if (member === null) {
        const reason: RefreshReason = access === 'write' ? 'no_writer' : 'no_reader';
        if (access === 'read') {
          // As drivers do: one refresh; still no reader, a retryable error (reads are not held).
          if (readerRefreshed) throw new NoMemberError(`no reader of ${table.database} is reachable`);
          readerRefreshed = true;
          forced = reason;
          continue;
        }
        await writerHold().wait();
        forced = reason;
        continue;
      }
      const pool = this.#poolFor(member);
      const failFast = new FailFast(pool, options);
      try {
        const lent = await checkoutVerified(pool, spec, verified, failFast.options);
        if ('refused' in lent) return lent;
        this.#options.observer.unitRouted(member, access);
        return { lent, pool, member, tableKey: key };
      } catch (error) {
        if (!failFast.gaveUp(error) && !(error instanceof UpstreamClosedError)) throw error;
        failures++;
        this.memberFailed(member, error);
      }
    }
  }

  /** A member could not be reached or failed: it leaves every table until a refresh brings it back. */
  memberFailed(member: string, cause: unknown): void {
    for (const entry of this.#tables.values()) {
      const table = entry.table;
      if (table === null) continue;
      const role = roleIn(table, member);
      if (role === null) continue;
      entry.table = withoutMember(table, member);
      this.#options.observer.failover(role);
    }
    this.#options.logger?.warn(
      { member, err: cause instanceof Error ? cause.message : String(cause) },
      'cluster member unreachable; routed around until a routing table refresh brings it back',
    );
  }

  /**
   * A writer answered NotALeader or ForbiddenOnReadOnlyDatabase: it stops being the writer, and the
   * next write refreshes the table (the client is told to retry).
   */
  notTheWriter(member: string, key: string, reason: 'not_a_leader' | 'forbidden_on_read_only'): void {
    const entry = this.#tables.get(this.#resolve(key));
    const table = entry?.table;
    if (entry === undefined || table === null || table === undefined) return;
    if (table.writers.includes(member)) this.#options.observer.failover('writer');
    entry.table = withoutWriter(table, member);
    // Refreshed by the next unit on this table: a refresh needs a login to ROUTE with, and that unit has one.
    entry.due = reason;
    this.#options.logger?.info(
      { member, database: table.database, reason },
      'writer refused a write; routing table refresh due',
    );
  }

  /** The tables and members as the proxy last saw them, for /status and the members-by-role gauge. */
  view(): RoutingView {
    const now = this.#options.clock.now();
    const roles = new Map<string, Set<MemberRole>>();
    const tables: RoutingView['tables'] = [];
    for (const entry of this.#tables.values()) {
      const table = entry.table;
      if (table === null) continue;
      tables.push({
        database: table.database,
        ttlSeconds: table.ttlMs / 1000,
        ageSeconds: Math.max(0, (now - table.fetchedAtMs) / 1000),
        writers: table.writers,
        readers: table.readers,
        routers: table.routers,
      });
      for (const role of MEMBER_ROLES) {
        for (const member of membersOf(table, role)) {
          const set = roles.get(member) ?? new Set<MemberRole>();
          roles.set(member, set);
          set.add(role);
        }
      }
    }
    const members: MemberView[] = [];
    for (const address of new Set([...roles.keys(), ...this.#pools.keys()])) {
      const pool = this.#pools.get(address);
      members.push({
        address,
        roles: [...(roles.get(address) ?? [])],
        reachable: pool?.maintenance.neo4jReachable ?? true,
        inUse: pool?.lentCount ?? 0,
      });
    }
    return { tables, members };
  }

  /** Writes held now for want of a writer. */
  get heldForWriter(): number {
    return this.#writerHolds.size;
  }

  close(): void {
    this.#closed = true;
    for (const hold of [...this.#writerHolds]) hold.end('shutdown');
    for (const pool of this.#pools.values()) pool.close();
  }

  /** The reader with the fewest upstreams in use (turns taken among equals), or the first reachable writer. */
  #pick(table: RoutingTable, access: 'read' | 'write'): string | null {
    const members = access === 'read' ? table.readers : table.writers;
    if (members.length === 0) return null;
    if (access === 'write') return members.find((member) => this.#reachable(member)) ?? null;
    const start = this.#nextReader++ % members.length;
    let best: string | null = null;
    let bestInUse = Number.POSITIVE_INFINITY;
    for (let i = 0; i < members.length; i++) {
      const member = members[(start + i) % members.length] as string;
      if (!this.#reachable(member)) continue;
      const inUse = this.#pools.get(member)?.lentCount ?? 0;
      if (inUse < bestInUse) {
        best = member;
        bestInUse = inUse;
      }
    }
    return best;
  }

  /** Its pool has not found it down (a down member's pool retries by itself and says when it is back). */
  #reachable(member: string): boolean {
    return this.#pools.get(member)?.maintenance.neo4jReachable ?? true;
  }

  #poolFor(member: string): UpstreamPool {
    if (member === this.#seedAddress) return this.#options.seedPool;
    let pool = this.#pools.get(member);
    if (pool !== undefined) return pool;
    const where = splitAddress(member);
    if (where === null) throw new RoutingTableError(`routing table address ${member} is not host:port`);
    const seed = this.#options.seed;
    const scheme = seed.uri.slice(0, seed.uri.indexOf('://'));
    pool = this.#options.createPool({
      host: where.host,
      port: where.port,
      tls: seed.tls,
      uri: `${scheme}://${member}`,
    });
    // A member first seen during a pause is paused with the rest.
    if (this.#options.seedPool.maintenance.paused) pool.pause();
    this.#pools.set(member, pool);
    return pool;
  }

  /** The current table for `key`, fetched first when there is none, it expired, or `forced` says so. */
  async #table(
    key: string,
    route: UnitRoute,
    spec: UpstreamSpec,
    verified: VerifiedLogin,
    options: CheckoutOptions,
    forced: RefreshReason | null,
  ): Promise<RoutingTable | RoutingRefused> {
    const resolved = this.#resolve(key);
    let entry = this.#tables.get(resolved);
    if (entry === undefined) {
      entry = { key: resolved, table: null, due: null, refreshing: null };
      this.#tables.set(resolved, entry);
    }
    const current = entry.table;
    const now = this.#options.clock.now();
    if (entry.refreshing === null) {
      const reason: RefreshReason | null =
        current === null ? 'first' : (forced ?? entry.due ?? (isExpired(current, now) ? 'expired' : null));
      if (reason === null && current !== null) return current;
      entry.due = null;
      const refresh = this.#fetch(entry, route, spec, verified, options, reason ?? 'first');
      entry.refreshing = refresh;
      void refresh
        .finally(() => {
          if (entry.refreshing === refresh) entry.refreshing = null;
        })
        .catch(() => {});
    }
    return entry.refreshing as Promise<RoutingTable | RoutingRefused>;
  }

  /**
   * A home-database key stands for the named database once a ROUTE resolved it, as drivers do: the
   * units that name it and those that do not then share one table, refreshed and corrected together.
   */
  #resolve(key: string): string {
    const database = this.#homeDatabases.get(key);
    return database === undefined ? key : databaseKey(database);
  }

  #learnHomeDatabase(entry: TableEntry, table: RoutingTable): void {
    const key = entry.key;
    if (this.#tables.get(key) !== entry || key.startsWith('db:') || table.database === '') return;
    this.#homeDatabases.set(key, table.database);
    this.#tables.delete(key);
    const named = this.#tables.get(databaseKey(table.database));
    if (named === undefined) this.#tables.set(databaseKey(table.database), entry);
    else if (named.refreshing === null) named.table = table;
  }

  /** ROUTE to each known router in turn, then the seed; the first table read wins. */
  async #fetch(
    entry: TableEntry,
    route: UnitRoute,
    spec: UpstreamSpec,
    verified: VerifiedLogin,
    options: CheckoutOptions,
    reason: RefreshReason,
  ): Promise<RoutingTable | RoutingRefused> {
    if (!speaksRoute(spec.version)) {
      throw new NoMemberError('cluster routing needs Bolt 4.3 or later (ROUTE); this client speaks an older version');
    }
    const routers = [...(entry.table?.routers ?? []).filter((router) => this.#reachable(router)), this.#seedAddress];
    let lastError: unknown = null;
    for (const router of new Set(routers)) {
      const pool = this.#poolFor(router);
      // The seed, the router of last resort, holds through an outage like any pool; the others fail fast.
      const failFast = router === this.#seedAddress ? null : new FailFast(pool, options);
      try {
        const outcome = await checkoutVerified(pool, spec, verified, failFast?.options ?? options);
        if ('refused' in outcome) {
          this.#options.observer.tableRefreshed(reason, 'failed');
          return { refused: outcome.refused, routing: true };
        }
        const { upstream } = outcome;
        const request = routeRequest(spec.version, this.#context, route.database, route.impersonatedUser);
        const replies = await pool.exchange(upstream, request, 1);
        const reply = replies?.at(-1);
        if (reply === undefined) {
          pool.release(upstream, { destroy: 'no_answer' });
          throw new UpstreamClosedError(`router ${router} did not answer ROUTE`);
        }
        const ok = reply.signature === BoltSignature.SUCCESS;
        pool.release(upstream, { pendingSummaries: 0, ready: ok });
        if (!ok) {
          this.#options.observer.tableRefreshed(reason, 'failed');
          return { refused: reply, routing: true };
        }
        const table = parseRoutingTable(reply.metadata, route.database, this.#options.clock.now());
        if (table.routers.length === 0 && table.readers.length === 0 && table.writers.length === 0)
          throw new RoutingTableError(`router ${router} answered an empty routing table`);
        entry.table = table;
        this.#learnHomeDatabase(entry, table);
        this.#options.observer.tableRefreshed(reason, 'ok');
        this.#options.logger?.debug(
          {
            router,
            database: table.database,
            reason,
            writers: table.writers,
            readers: table.readers,
            ttlSeconds: table.ttlMs / 1000,
            requested: route.database ?? (route.impersonatedUser === null ? '(home)' : '(home of impersonated user)'),
          },
          'routing table fetched',
        );
        return table;
      } catch (error) {
        if (error instanceof HoldTimeoutError) throw error;
        const routerFailed =
          error instanceof UpstreamClosedError ||
          error instanceof RoutingTableError ||
          failFast?.gaveUp(error) === true;
        if (!routerFailed) throw error;
        lastError = error;
        if (router !== this.#seedAddress) this.memberFailed(router, error);
      }
    }
    this.#options.observer.tableRefreshed(reason, 'failed');
    throw new NoMemberError(
      `no router answered ROUTE (${lastError instanceof Error ? lastError.message : 'unknown error'})`,
    );
  }

  /** A write with no writer known: held like the pool holds through an outage (same bound), counted as no_writer. */
  #holdForWriter(options: CheckoutOptions): WriterHold {
    const hold = new WriterHold(this.#options, options, () => this.#writerHolds.delete(hold));
    this.#writerHolds.add(hold);
    return hold;
  }
}

function databaseKey(database: string): string {
  return `db:${database}`;
}

/**
 * Tables of a named database are shared; the home database may differ per user, so its table is kept
 * per user (the impersonated one when there is one, as its home database is the one that counts).
 */
function tableKey(route: UnitRoute, login: Login): string {
  if (route.database !== null) return databaseKey(route.database);
  if (route.impersonatedUser !== null) return `home-as:${route.impersonatedUser}`;
  return `home:${login.principal.toString('base64')}`;
}

function membersOf(table: RoutingTable, role: MemberRole): readonly string[] {
  return role === 'writer' ? table.writers : role === 'reader' ? table.readers : table.routers;
}

function roleIn(table: RoutingTable, member: string): MemberRole | null {
  for (const role of MEMBER_ROLES) if (membersOf(table, role).includes(member)) return role;
  return null;
}

/** The routing context drivers send: the seed URI's query parameters and its address. */
function routingContext(seed: UpstreamTarget): ReadonlyMap<string, string> {
  const context = new Map<string, string>();
  try {
    for (const [name, value] of new URL(seed.uri).searchParams) context.set(name, value);
  } catch {
    // upstreamFromUri already parsed it; nothing else to add.
  }
  context.set('address', formatAddress(seed.host, seed.port));
  return context;
}
