/**
 * The database label of queries that name none, through the real proxy to the real Neo4j with the JS
 * driver, one driver (and connection) per task: a FAILURE names no database, so a failing query is
 * listed under the home database its user's successful queries ran on, learnt across connections;
 * before any succeeded, under the documented "(home)", never a made-up "default".
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import neo4j, { type Driver } from 'neo4j-driver';
import { HOME_DATABASE_LABEL } from '../../src/metrics/index.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { startTestProxy, type TestProxy } from './support.ts';

const ERRORS = 'neo4j_query_errors_total';
const DURATION_COUNT = 'neo4j_query_duration_seconds_count';

let server: TestNeo4j;

before(async () => {
  server = await sharedNeo4j();
});
after(async () => {
  await releaseSharedNeo4j();
});

for (const mode of ['off', 'transaction'] as const)
  describe(`the database of a query that names none, pooling ${mode}`, () => {
    let proxy: TestProxy;
    before(async () => {
      proxy = await startTestProxy(server.uri, { pooling: { mode } });
    });
    after(async () => {
      await proxy?.stop();
    });

    async function task(work: (driver: Driver) => Promise<void>): Promise<void> {
      const driver = neo4j.driver(proxy.boltUri, neo4j.auth.basic(server.username, server.password), {
        logging: { level: 'error', logger: () => {} },
      });
      try {
        await work(driver);
      } finally {
        await driver.close();
      }
    }
    const failing = (driver: Driver) => assert.rejects(driver.executeQuery('RETURN 1 / 0 AS x'), /by zero/);
    const succeeding = async (driver: Driver) => {
      await driver.executeQuery('RETURN 1 AS x');
    };
    const errors = (database: string) => proxy.metric(ERRORS, { source: 'proxy', database });
    const successes = (database: string) =>
      proxy.metric(DURATION_COUNT, { source: 'proxy', database, outcome: 'success' });

    it('is "(home)" for a first query that fails, then the database the successful twin ran on', async () => {
      await task(failing);
      assert.equal(await errors(HOME_DATABASE_LABEL), 1, 'nothing known yet: the home database, unnamed');
      await task(succeeding);
      assert.equal(await successes('neo4j'), 1);
      for (let i = 0; i < 3; i++) await task(failing);
      assert.equal(await errors('neo4j'), 3, 'each per-task connection fails under the learnt home database');
      assert.equal(await errors(HOME_DATABASE_LABEL), 1);
      assert.equal(await errors('default'), 0);
    });
  });
