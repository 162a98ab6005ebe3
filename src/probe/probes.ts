/**
 * The probes themselves. Each one does its work and cleans up after itself even when the scheduler
 * has already given up on it (timeout): a connection acquired late is released, a session closed, a
 * fresh driver closed. The scheduler times them and records the outcome.
 */
import type { Driver } from 'neo4j-driver';
import { findConnectionProvider } from '../driver/index.ts';
import type { Census } from './census.ts';

export const PROBE_NAMES = ['acquisition', 'round_trip', 'fresh_connect', 'census'] as const;
export type ProbeName = (typeof PROBE_NAMES)[number];

/** The `database` label of probes that do not target a database (fresh connect, census). */
export const NO_DATABASE = '';
/** The `database` label when no database is configured: the user's home database. */
export const DEFAULT_DATABASE = 'default';

export type ProbePhase = 'lead' | 'main' | 'last';

export interface ProbeSuccess {
  /** The measured time, when it is not the whole run (the acquisition probe excludes the release). */
  seconds?: number;
  detail?: Record<string, unknown>;
}

export interface ProbeSpec {
  readonly probe: ProbeName;
  /** Label value: a database name, `default`, or '' for probes not tied to a database. */
  readonly database: string;
  readonly everyRuns: number;
  readonly gatesReadiness: boolean;
  /**
   * `lead` probes start alone and the others wait for them (a short while at most), so the acquisition
   * probe times the pool rather than the event loop busy with the other probes. `last` probes start once
   * the others have finished: the census, so that it lists the connections the others just opened (and
   * leaves out their load from the probes' timings). Default `main`.
   */
  readonly phase?: ProbePhase;
  run(): Promise<ProbeSuccess>;
}

export interface ProbeScheduling {
  everyRuns: number;
  gatesReadiness: boolean;
}

function databaseOption(database: string): string {
  return database === DEFAULT_DATABASE ? '' : database;
}

/**
 * Times `acquireConnection` on the driver's connection provider, the call a session makes before its
 * first message: waiting for a free slot, creating and authenticating a connection when none is idle,
 * and for neo4j:// URIs refreshing a stale routing table. No Bolt message is sent on the connection;
 * it goes straight back to the pool.
 */
export function acquisitionProbe(driver: Driver, database: string, scheduling: ProbeScheduling): ProbeSpec {
  return {
    probe: 'acquisition',
    database,
    ...scheduling,
    phase: 'lead',
    async run() {
      const found = findConnectionProvider(driver);
      if (!found.ok) throw new Error(`acquisition probe unsupported by this neo4j-driver: ${found.reason}`);
      const started = performance.now();
      const connection = await found.provider.acquireConnection({
        accessMode: 'READ',
        database: databaseOption(database),
      });
      const seconds = (performance.now() - started) / 1000;
      await connection.release();
      return { seconds };
    },
  };
}

/** The system database refuses plain Cypher; `db.ping()` is its equivalent of `RETURN 1`. */
function roundTripQuery(database: string): string {
  return database.toLowerCase() === 'system' ? 'CALL db.ping()' : 'RETURN 1 AS probe';
}

/**
 * `RETURN 1` in an auto-commit transaction: session.run to its summary, so one RUN+PULL round trip on a
 * pooled connection plus the (normally idle, microsecond) acquisition.
 */
export function roundTripProbe(driver: Driver, database: string, scheduling: ProbeScheduling): ProbeSpec {
  return {
    probe: 'round_trip',
    database,
    ...scheduling,
    async run() {
      const target = databaseOption(database);
      const session = driver.session({ defaultAccessMode: 'READ', ...(target ? { database: target } : {}) });
      try {
        const result = await session.run(roundTripQuery(database));
        const server = result.summary.server;
        return { detail: { server: server.address, database: result.summary.database.name } };
      } finally {
        await session.close();
      }
    },
  };
}

export interface FreshConnectOptions {
  /** Builds a driver configured like the sidecar's own (URI, credentials, TLS) with a pool of one. */
  createDriver: () => Driver;
  /** Told each time the probe makes the server open a connection, so the census can leave it out. */
  onConnectionOpened?: () => void;
}

/**
 * A brand-new driver up to an authenticated connection (TCP, TLS, Bolt handshake, HELLO/LOGON, and for
 * neo4j:// URIs the routing table): what a per-task driver pays before its first query, every task.
 */
export function freshConnectProbe(options: FreshConnectOptions, scheduling: ProbeScheduling): ProbeSpec {
  return {
    probe: 'fresh_connect',
    database: NO_DATABASE,
    ...scheduling,
    async run() {
      const driver = options.createDriver();
      try {
        options.onConnectionOpened?.();
        const info = await driver.getServerInfo();
        return { detail: { server: info.address, agent: info.agent, protocolVersion: info.protocolVersion } };
      } finally {
        await driver.close();
      }
    },
  };
}

export interface CensusProbeSources {
  /** The sidecar's pooled driver: the listing reuses its connections, so a census costs no login. */
  driver: Driver;
  /** Reads the server's connection-id counter over an unauthenticated connection of its own. */
  readCounter: () => Promise<number | undefined>;
  /** Told each time the probe makes the server open a connection, so the census can leave it out. */
  onConnectionOpened?: () => void;
}

/** The server census (census.ts): the counter's connection is the only one it opens, and it never logs in. */
export function censusProbe(census: Census, sources: CensusProbeSources, scheduling: ProbeScheduling): ProbeSpec {
  return {
    probe: 'census',
    database: NO_DATABASE,
    ...scheduling,
    phase: 'last',
    async run() {
      const report = await census.run({
        driver: sources.driver,
        readCounter: () => {
          sources.onConnectionOpened?.();
          return sources.readCounter();
        },
      });
      return {
        detail: {
          connections: report.connections.total,
          openedSinceLastCensus: report.opened.sinceLastCensus,
          visibility: report.visibility,
        },
      };
    },
  };
}
