/**
 * The closest honest cluster these machines can run (Neo4j Enterprise is not on Maven Central): real
 * Neo4j Community 5.26 servers as members, each holding one marker node `(:ClusterMember {name})` so
 * a query tells which member served it, and in front of them the scripted router of
 * ./scripted-bolt.ts answering ROUTE with a table naming them. The router and the not-a-leader member
 * are re-exported, so a cluster test imports from here alone.
 */
import neo4j, { type Driver } from 'neo4j-driver';
import { DEFAULT_TEST_PASSWORD, type LocalNeo4j, startLocalNeo4j } from '../../scripts/neo4j/local-neo4j.ts';
import { type ScriptedRouter, type ScriptedRoutingTable, startScriptedRouter } from './scripted-bolt.ts';

export {
  type NotALeaderMember,
  type RouteRequestCounts,
  type ScriptedRouter,
  type ScriptedRoutingTable,
  startNotALeaderMember,
  startScriptedRouter,
} from './scripted-bolt.ts';

export const DEFAULT_MEMBER_NAMES = ['writer', 'reader-1', 'reader-2'] as const;

/** Which member served a read: one row, its marker's name. */
export const READ_MEMBER_QUERY = 'MATCH (m:ClusterMember) RETURN m.name AS member';
/** A write that tells which member took it: one row, its marker's name. */
export const WRITE_MEMBER_QUERY =
  'CREATE (w:ClusterWrite {id: $id}) WITH w MATCH (m:ClusterMember) RETURN m.name AS member';

export interface TestClusterOptions {
  /** Member names; default writer, reader-1, reader-2. The first is the writer of the router's first table. */
  readonly members?: readonly string[];
  /** JVM heap of each member; default 256m, three members on a small machine. */
  readonly heap?: string;
  readonly password?: string;
  /** TTL of the router's first table; default 300 s. */
  readonly ttlSeconds?: number;
}

export interface ClusterMember {
  readonly name: string;
  /** bolt://127.0.0.1:<port> */
  readonly uri: string;
  /** 127.0.0.1:<port>, as routing tables and the proxy's member label name it. */
  readonly address: string;
  /** The server: stop() and start() it, or SIGKILL its pid(). */
  readonly server: LocalNeo4j;
}

/** Members by name, or addresses kept as given (a scripted member's, the router's). */
export interface TableByName {
  readonly ttlSeconds?: number;
  readonly routers?: readonly string[];
  readonly writers: readonly string[];
  readonly readers: readonly string[];
  readonly db?: string;
}

export interface TestCluster {
  readonly members: Readonly<Record<string, ClusterMember>>;
  /** Answers ROUTE for the cluster's login; its first table: the first member writes, the others read, it routes. */
  readonly router: ScriptedRouter;
  /** One login that works on every member and on the router. */
  readonly username: string;
  readonly password: string;
  /** The member at host:port, if any. */
  memberAt(address: string): ClusterMember | undefined;
  /**
   * A router table from member names (an entry that names no member is taken as an address); routers
   * default to the scripted router, the TTL to 300 s.
   */
  table(roles: TableByName): ScriptedRoutingTable;
  /** `(:ClusterWrite {id})` nodes on each member, by member name; every member must be running. */
  countWrites(id: string | number): Promise<Record<string, number>>;
  /** Stops the router and every member and deletes their folders. */
  destroy(): Promise<void>;
}

export async function startTestCluster(options: TestClusterOptions = {}): Promise<TestCluster> {
  const names = options.members ?? DEFAULT_MEMBER_NAMES;
  if (names.length === 0 || new Set(names).size !== names.length) {
    throw new Error(`cluster member names must be distinct and at least one: ${names.join(', ')}`);
  }
  const password = options.password ?? DEFAULT_TEST_PASSWORD;
  const heap = options.heap ?? '256m';
  const started = await Promise.allSettled(names.map((name) => startMember(name, { password, heap })));
  const members = started.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
  const failure = started.find((outcome) => outcome.status === 'rejected');
  if (failure !== undefined) {
    await Promise.all(members.map(({ member, driver }) => closeMember(member, driver)));
    throw failure.reason;
  }
  const byName = Object.fromEntries(members.map(({ member }) => [member.name, member]));
  const drivers = new Map(members.map(({ member, driver }) => [member.name, driver]));
  const username = members[0]?.member.server.username ?? 'neo4j';

  const tableOf = (routerAddress: string, roles: TableByName): ScriptedRoutingTable => {
    const address = (entry: string) => byName[entry]?.address ?? entry;
    return {
      ttlSeconds: roles.ttlSeconds ?? options.ttlSeconds ?? 300,
      routers: (roles.routers ?? [routerAddress]).map(address),
      writers: roles.writers.map(address),
      readers: roles.readers.map(address),
      ...(roles.db === undefined ? {} : { db: roles.db }),
    };
  };
  const [writer, ...readers] = names as [string, ...string[]];
  let router: ScriptedRouter;
  try {
    // The table names the router itself, whose address is known once it listens: nobody can ask it
    // for a table before then, so it starts with an empty one.
    router = await startScriptedRouter({
      username,
      password,
      table: { ttlSeconds: 0, routers: [], writers: [], readers: [] },
    });
    router.setTable(tableOf(router.address, { writers: [writer], readers: readers.length > 0 ? readers : [writer] }));
  } catch (error) {
    await Promise.all(members.map(({ member, driver }) => closeMember(member, driver)));
    throw error;
  }

  return {
    members: byName,
    router,
    username,
    password,
    memberAt: (address) => members.find(({ member }) => member.address === address)?.member,
    table: (roles) => tableOf(router.address, roles),
    async countWrites(id) {
      const counts = await Promise.all(
        [...drivers].map(async ([name, driver]) => {
          const { records } = await driver.executeQuery('MATCH (w:ClusterWrite {id: $id}) RETURN count(w) AS n', {
            id,
          });
          return [name, Number(records[0]?.get('n') ?? 0)] as const;
        }),
      );
      return Object.fromEntries(counts);
    },
    async destroy() {
      await router.close();
      await Promise.all(members.map(({ member, driver }) => closeMember(member, driver)));
    },
  };
}

interface StartedMember {
  readonly member: ClusterMember;
  /** bolt:// straight to the member, for the fixture's own reads (marker, counts). */
  readonly driver: Driver;
}

async function startMember(name: string, options: { password: string; heap: string }): Promise<StartedMember> {
  const server = await startLocalNeo4j({ name: `cluster-${name}`, password: options.password, heap: options.heap });
  const driver = neo4j.driver(server.uri, neo4j.auth.basic(server.username, server.password), {
    logging: { level: 'error', logger: () => {} },
  });
  try {
    await driver.executeQuery('CREATE (:ClusterMember {name: $name})', { name });
  } catch (error) {
    await closeMember({ name, uri: server.uri, address: '', server }, driver);
    throw error;
  }
  return { member: { name, uri: server.uri, address: `127.0.0.1:${server.boltPort}`, server }, driver };
}

/**
 * Kills the member's JVM before deleting its folder: the data goes anyway, and a clean shutdown
 * (checkpoint, SIGTERM) took ~10 s of every test file's teardown here.
 */
async function closeMember(member: ClusterMember, driver: Driver): Promise<void> {
  await driver.close();
  const pid = member.server.pid();
  if (pid !== undefined) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone: destroy() below finds it stopped.
    }
  }
  await member.server.destroy();
}
