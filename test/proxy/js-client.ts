/**
 * The client scenarios of scripts/clients (autocommit, explicit-tx, ...) for the JavaScript driver, in
 * this process, with the same report shape as the Python and Java clients, so one suite checks all
 * three through the proxy.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import neo4j6 from 'neo4j-driver';
import neo4j5 from 'neo4j-driver-5';
import type {
  BasicScenarioName,
  ScenarioError,
  ScenarioName,
  ScenarioOutputs,
  ScenarioResult,
  ScenarioServerInfo,
} from '../../scripts/clients/run-scenario.ts';

type DriverModule = typeof neo4j6;
export type Driver = ReturnType<DriverModule['driver']>;
export type ResultSummary = Awaited<ReturnType<ReturnType<Driver['session']>['run']>>['summary'];

export type JsDriverLine = '5' | '6';

/** The report of one scenario run; `client` names the JavaScript driver line too. */
export type ClientReport<S extends ScenarioName = ScenarioName> = Omit<ScenarioResult<S>, 'client'> & {
  client: string;
};

export interface ScenarioConnection {
  uri: string;
  user: string;
  password: string;
}

export const jsDriverModules: Record<JsDriverLine, DriverModule> = {
  '6': neo4j6,
  '5': neo4j5 as unknown as DriverModule,
};

const require = createRequire(import.meta.url);
export const JS_DRIVER_VERSIONS: Record<JsDriverLine, string> = {
  '6': (require('neo4j-driver/package.json') as { version: string }).version,
  '5': (require('neo4j-driver-5/package.json') as { version: string }).version,
};

const PAYLOAD_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const LARGE_ROWS = 5000;
const LARGE_ROW_BYTES = 1000;
const CONCURRENT_SESSIONS = 50;

class ScenarioFailure extends Error {
  constructor(
    readonly failure: unknown,
    readonly partial: unknown,
  ) {
    super(String(failure));
  }
}

export function serverInfo(summary: ResultSummary): ScenarioServerInfo {
  // 5.x reports a number (5.8); 6.x a ProtocolVersion, whose getMinor() returns the major in 6.3.0.
  const version = summary.server.protocolVersion as unknown as number | { major: number; minor: number };
  return {
    address: summary.server.address ?? '',
    agent: summary.server.agent ?? '',
    protocolVersion: typeof version === 'number' ? version.toFixed(1) : `${version.major}.${version.minor}`,
  };
}

export function errorReport(error: unknown): ScenarioError {
  const failure = error as Error & {
    code?: string;
    gqlStatus?: string;
    gqlStatusDescription?: string;
    cause?: { gqlStatus?: string };
    retriable?: boolean;
  };
  const code = typeof failure.code === 'string' && failure.code.startsWith('Neo.') ? failure.code : null;
  return {
    className: failure.constructor?.name ?? 'Error',
    code,
    gqlStatus: failure.gqlStatus ?? null,
    gqlStatusDescription: failure.gqlStatusDescription ?? null,
    causeGqlStatus: failure.cause?.gqlStatus ?? null,
    classification: code ? (code.split('.')[1] ?? null) : null,
    message: failure.message,
    retryable: failure.retriable === true,
    ...(code ? {} : { stack: failure.stack ?? '' }),
  };
}

export type Runner = (driver: Driver, note: (summary: ResultSummary) => void) => Promise<unknown>;

const runners: Record<BasicScenarioName, Runner> = {
  async autocommit(driver, note) {
    const session = driver.session();
    try {
      const result = await session.run('RETURN 1 AS value');
      note(result.summary);
      return { records: result.records.length, value: result.records[0]?.get('value').toNumber() };
    } finally {
      await session.close();
    }
  },
  async 'explicit-tx'(driver, note) {
    const id = crypto.randomUUID();
    const session = driver.session();
    try {
      const tx = await session.beginTransaction();
      const created = await tx.run('CREATE (p:ScenarioProbe {id: $id}) RETURN p.id AS id', { id });
      const deleted = await tx.run('MATCH (p:ScenarioProbe {id: $id}) DELETE p RETURN count(*) AS deleted', { id });
      note(deleted.summary);
      await tx.commit();
      return {
        queries: 2,
        createdIdMatches: created.records[0]?.get('id') === id,
        deleted: deleted.records[0]?.get('deleted').toNumber(),
        committed: true,
        hasBookmark: session.lastBookmarks().length > 0,
      };
    } finally {
      await session.close();
    }
  },
  async 'managed-read'(driver, note) {
    const session = driver.session();
    try {
      const result = await session.executeRead((tx) => tx.run('RETURN 1 AS value'));
      note(result.summary);
      return { value: result.records[0]?.get('value').toNumber(), database: result.summary.database.name };
    } finally {
      await session.close();
    }
  },
  async 'managed-write'(driver, note) {
    const id = crypto.randomUUID();
    const session = driver.session();
    try {
      const result = await session.executeWrite((tx) =>
        tx.run('CREATE (p:ScenarioProbe {id: $id}) WITH p DELETE p RETURN count(*) AS touched', { id }),
      );
      note(result.summary);
      const counters = result.summary.counters.updates();
      return {
        nodesCreated: counters.nodesCreated,
        nodesDeleted: counters.nodesDeleted,
        database: result.summary.database.name,
      };
    } finally {
      await session.close();
    }
  },
  async 'failing-query'(driver) {
    const session = driver.session();
    try {
      await session.run('THIS IS NOT CYPHER');
      return {};
    } finally {
      await session.close();
    }
  },
  async 'wrong-password'(driver) {
    await driver.verifyConnectivity();
    return {};
  },
  async 'large-result'(driver, note) {
    const block = PAYLOAD_ALPHABET.repeat(Math.floor(LARGE_ROW_BYTES / PAYLOAD_ALPHABET.length) + 1).slice(
      0,
      LARGE_ROW_BYTES,
    );
    const hash = createHash('sha256');
    let rows = 0;
    let payloadBytes = 0;
    let inOrder = true;
    const session = driver.session();
    try {
      const result = await session.run(
        "UNWIND range(1, $rows) AS i RETURN i, left(toString(i) + '-' + $block, $rowBytes) AS payload",
        { rows: neo4j6.int(LARGE_ROWS), block, rowBytes: neo4j6.int(LARGE_ROW_BYTES) },
      );
      for (const record of result.records) {
        const payload = Buffer.from(record.get('payload') as string, 'utf8');
        hash.update(payload).update('\n');
        payloadBytes += payload.length;
        rows++;
        inOrder &&= record.get('i').toNumber() === rows;
      }
      note(result.summary);
    } finally {
      await session.close();
    }
    return { rows, payloadBytes, sha256: hash.digest('hex'), inOrder };
  },
  async concurrent(driver, note) {
    // Every session holds an open transaction until all have one, so the proxy really carries
    // CONCURRENT_SESSIONS connections at once.
    let arrived = 0;
    let release: () => void = () => {};
    const allArrived = new Promise<void>((resolve) => {
      release = resolve;
    });
    const arrive = () => {
      arrived++;
      if (arrived === CONCURRENT_SESSIONS) release();
    };
    const outcomes = await Promise.allSettled(
      Array.from({ length: CONCURRENT_SESSIONS }, async (_, index) => {
        const session = driver.session();
        let counted = false;
        try {
          const tx = await session.beginTransaction();
          const result = await tx.run('RETURN $index AS index', { index: neo4j6.int(index) });
          counted = true;
          arrive();
          await allArrived;
          await tx.commit();
          note(result.summary);
          return result.records[0]?.get('index').toNumber() as number;
        } finally {
          if (!counted) arrive();
          await session.close();
        }
      }),
    );
    const values = outcomes.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
    const failures = outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason] : []));
    const partial = {
      sessions: CONCURRENT_SESSIONS,
      succeeded: values.length,
      failed: failures.length,
      distinctValues: new Set(values).size,
      heldOpenTogether: failures.length === 0,
    };
    if (failures.length > 0) throw new ScenarioFailure(failures[0], partial);
    return partial;
  },
};

/** Driver settings a scenario may change from the clients' common ones. */
export interface JsDriverSettings {
  maxConnectionPoolSize?: number;
  /** Managed transactions' retry budget, ms (the driver's default is 30 s). */
  maxTransactionRetryTime?: number;
}

/**
 * Runs `body` with a driver of the given line and reports it like the other clients: the scenario's
 * result, or the error it threw (with the partial result of a ScenarioFailure).
 */
export async function runWithJsDriver<S extends ScenarioName>(
  driverLine: JsDriverLine,
  scenario: S,
  connection: ScenarioConnection,
  body: Runner,
  settings: JsDriverSettings = {},
): Promise<ClientReport<S>> {
  const neo4j = jsDriverModules[driverLine];
  const password = scenario === 'wrong-password' ? `${connection.password}-wrong-on-purpose` : connection.password;
  const driver = neo4j.driver(connection.uri, neo4j.auth.basic(connection.user, password), {
    maxConnectionPoolSize: 100,
    ...settings,
    logging: { level: 'error', logger: () => {} },
  });
  const started = performance.now();
  let server: ScenarioServerInfo | null = null;
  const note = (summary: ResultSummary) => {
    server ??= serverInfo(summary);
  };
  const report: ClientReport<S> = {
    client: `javascript-${driverLine}`,
    scenario,
    ok: false,
    driverVersion: JS_DRIVER_VERSIONS[driverLine],
    uri: connection.uri,
    server: null,
    durationMs: 0,
    result: null,
    error: null,
  };
  try {
    report.result = (await body(driver, note)) as ScenarioOutputs[S];
    report.ok = true;
  } catch (error) {
    const cause = error instanceof ScenarioFailure ? error.failure : error;
    if (error instanceof ScenarioFailure) report.result = error.partial as ScenarioOutputs[S];
    report.error = errorReport(cause);
  } finally {
    report.durationMs = Math.round(performance.now() - started);
    report.server = server;
    await driver.close();
  }
  return report;
}

/** Runs one scenario with the JavaScript driver of the given line and reports it like the other clients. */
export function runJsScenario<S extends BasicScenarioName>(
  driverLine: JsDriverLine,
  scenario: S,
  connection: ScenarioConnection,
): Promise<ClientReport<S>> {
  return runWithJsDriver(driverLine, scenario, connection, runners[scenario]);
}
