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

/** One query of a workload on a JS driver, checked for its row count so a broken path cannot look fast. */
export function jsQuery(driver: Driver, workload: Workload): () => Promise<void> {
  return async () => {
    const result = await driver.executeQuery(
      workload.cypher,
      {},
      { database: BENCH_DATABASE, routing: neo4j.routing.READ },
    );
    if (result.records.length !== workload.rows) {
      throw new Error(`${workload.name}: expected ${workload.rows} rows, got ${result.records.length}`);
    }
  };
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
