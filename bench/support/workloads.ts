/**
 * The two query shapes every throughput comparison runs: the cheapest possible round trip, where
 * any per-query overhead shows most, and a 1,000-row read of real nodes, where bytes dominate.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import neo4j, { type Driver } from 'neo4j-driver';
import { repoRoot } from '../../scripts/neo4j/local-neo4j.ts';

export interface Workload {
  /** Table label. */
  name: string;
  /** Key in JSON results and for the Python client. */
  key: WorkloadKey;
  cypher: string;
  rows: number;
}

export type WorkloadKey = 'return1' | 'rows1000';

export const BENCH_ROW_COUNT = 1000;

export const WORKLOADS: readonly Workload[] = [
  { name: 'RETURN 1', key: 'return1', cypher: 'RETURN 1 AS value', rows: 1 },
  {
    name: '1,000-row read',
    key: 'rows1000',
    cypher: 'MATCH (row:BenchRow) RETURN row.id AS id, row.name AS name, row.score AS score',
    rows: BENCH_ROW_COUNT,
  },
];

export const BENCH_DATABASE = 'neo4j';

/** Makes the 1,000 :BenchRow nodes the read workload returns (idempotent). */
export async function seedBenchRows(driver: Driver): Promise<void> {
  await driver.executeQuery('MATCH (row:BenchRow) DETACH DELETE row', {}, { database: BENCH_DATABASE });
  await driver.executeQuery(
    'UNWIND range(1, $count) AS i CREATE (:BenchRow {id: i, name: "row-" + toString(i), score: toFloat(i) / 7})',
    { count: neo4j.int(BENCH_ROW_COUNT) },
    { database: BENCH_DATABASE },
  );
}

/**
 * How a task sends its query, which decides its round trips to Neo4j: `executeQuery` (the drivers'
 * recommended API: a managed transaction, BEGIN, RUN and PULL, then COMMIT, so two round trips, three
 * where the driver waits for BEGIN's answer) or `session.run` (an auto-commit query: RUN and PULL
 * pipelined, one round trip).
 */
export type QueryShape = 'executeQuery' | 'session.run';

export const QUERY_SHAPES: readonly QueryShape[] = ['executeQuery', 'session.run'];

/** One query of a workload on a JS driver, checked for its row count so a broken path cannot look fast. */
export function jsQuery(driver: Driver, workload: Workload, shape: QueryShape = 'executeQuery'): () => Promise<void> {
  return async () => {
    const { rows } = await jsQueryRows(driver, workload.cypher, shape);
    if (rows !== workload.rows) {
      throw new Error(`${workload.name}: expected ${workload.rows} rows, got ${rows}`);
    }
  };
}

/**
 * Runs `cypher` in the given shape: how many rows came back and when they were in (performance.now(),
 * before the session's close, which a timed task does not wait for).
 */
export async function jsQueryRows(
  driver: Driver,
  cypher: string,
  shape: QueryShape,
): Promise<{ rows: number; rowsInAtMs: number }> {
  if (shape === 'executeQuery') {
    const result = await driver.executeQuery(cypher, {}, { database: BENCH_DATABASE, routing: neo4j.routing.READ });
    return { rows: result.records.length, rowsInAtMs: performance.now() };
  }
  const session = driver.session({ database: BENCH_DATABASE, defaultAccessMode: neo4j.session.READ });
  try {
    const result = await session.run(cypher);
    return { rows: result.records.length, rowsInAtMs: performance.now() };
  } finally {
    await session.close();
  }
}

export interface Credentials {
  username: string;
  password: string;
}

export function benchDriver(uri: string, credentials: Credentials): Driver {
  return neo4j.driver(uri, neo4j.auth.basic(credentials.username, credentials.password), {
    // Sized above the highest concurrency, so the pool never makes a loop wait.
    maxConnectionPoolSize: 64,
    logging: { level: 'error', logger: () => {} },
  });
}

/** The installed neo4j-driver version (its package.json is not among the package's exports). */
export function jsDriverVersion(): string {
  const manifest = JSON.parse(readFileSync(join(repoRoot, 'node_modules', 'neo4j-driver', 'package.json'), 'utf8')) as {
    version?: string;
  };
  return manifest.version ?? 'unknown';
}
