/**
 * The scenario checks every non-JS client must pass against a real Neo4j 5.26 (the test run's shared
 * server). The proxy tests run the same scenarios through the proxy and compare with direct results.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  type ClientName,
  type DriverLine,
  ensureClient,
  expectedLargeResultSha256,
  type RunScenarioOptions,
  runClientScenario,
  type ScenarioName,
  type ScenarioResult,
} from '../../scripts/clients/run-scenario.ts';
import { DEFAULT_NEO4J_VERSION, freePort } from '../../scripts/neo4j/local-neo4j.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';

/** Asserts a run succeeded and returns its typed result, printing the whole report when it did not. */
export function expectOk<S extends ScenarioName>(report: ScenarioResult<S>): NonNullable<ScenarioResult<S>['result']> {
  assert.equal(report.ok, true, `expected ${report.client} ${report.scenario} to succeed: ${JSON.stringify(report)}`);
  assert.equal(report.error, null);
  assert.ok(report.result, `${report.client} ${report.scenario} reported no result`);
  return report.result;
}

/** Asserts a run failed with the given Neo4j status code and returns its error. */
export function expectNeo4jError(report: ScenarioResult, code: string): NonNullable<ScenarioResult['error']> {
  assert.equal(report.ok, false, `expected ${report.client} ${report.scenario} to fail: ${JSON.stringify(report)}`);
  assert.ok(report.error, `${report.client} ${report.scenario} failed without error details`);
  assert.equal(report.error.code, code, `unexpected error: ${JSON.stringify(report.error)}`);
  assert.equal(report.error.classification, code.split('.')[1]);
  assert.equal(report.error.retryable, false);
  return report.error;
}

/** What differs between clients and driver lines in the direct suite. */
export interface ClientSuiteExpectations<C extends ClientName> {
  driverLine: DriverLine<C>;
  /** Bolt version this line and Neo4j 5.26 agree on: 5.8 for the 5.x and 6.x lines, 4.4 for 4.4. */
  boltVersion: string;
  /** GQL status reported for a 5.26 syntax error: the drivers' "unknown" 50N42, none before 5.x. */
  syntaxErrorGqlStatus: string | null;
  /** The driver's error class for a refused connection, e.g. ServiceUnavailable, ConnectivityError. */
  refusedClassName: RegExp;
}

export function defineClientSuite<C extends ClientName>(client: C, expected: ClientSuiteExpectations<C>): void {
  const { driverLine } = expected;
  // At file level, after every suite of the file: a file run on its own starts the server once.
  after(() => releaseSharedNeo4j());
  describe(`${client} driver ${driverLine} against Neo4j ${DEFAULT_NEO4J_VERSION}`, { timeout: 15 * 60_000 }, () => {
    let server: TestNeo4j;
    let connection: RunScenarioOptions<C>;

    before(async () => {
      const [started] = await Promise.all([sharedNeo4j(), ensureClient(client, driverLine)]);
      server = started;
      connection = { uri: started.uri, user: started.username, password: started.password, driverLine };
    });

    const run = <S extends ScenarioName>(scenario: S, overrides: Partial<RunScenarioOptions<C>> = {}) =>
      runClientScenario(client, scenario, { ...connection, ...overrides });

    test('autocommit: RETURN 1, and the report names driver, server and Bolt version', async () => {
      const report = await run('autocommit');
      assert.deepEqual(expectOk(report), { records: 1, value: 1 });
      assert.match(report.driverVersion, new RegExp(`^${driverLine.replace('.', '\\.')}\\.`));
      assert.equal(report.server?.agent, `Neo4j/${DEFAULT_NEO4J_VERSION}`);
      assert.equal(report.server?.protocolVersion, expected.boltVersion);
      assert.equal(report.server?.address, server.uri.replace('bolt://', ''));
    });

    test('explicit-tx: two queries in one committed transaction', async () => {
      assert.deepEqual(expectOk(await run('explicit-tx')), {
        queries: 2,
        createdIdMatches: true,
        deleted: 1,
        committed: true,
        hasBookmark: true,
      });
    });

    for (const scheme of ['bolt', 'neo4j'] as const) {
      test(`managed-read and managed-write over ${scheme}://`, async () => {
        const uri = connection.uri.replace(/^bolt:/, `${scheme}:`);
        const read = await run('managed-read', { uri });
        assert.deepEqual(expectOk(read), { value: 1, database: 'neo4j' });
        assert.equal(read.uri, uri);
        const write = await run('managed-write', { uri });
        assert.deepEqual(expectOk(write), { nodesCreated: 1, nodesDeleted: 1, database: 'neo4j' });
      });
    }

    test('failing-query reports the server syntax error code', async () => {
      const report = await run('failing-query');
      const error = expectNeo4jError(report, 'Neo.ClientError.Statement.SyntaxError');
      assert.match(error.message, /Invalid input 'THIS'/);
      // Neo4j 5.26 sends no GQL status; the 5.x+ drivers fill in their "unknown" 50N42.
      assert.equal(error.gqlStatus, expected.syntaxErrorGqlStatus);
      assert.equal(report.server?.protocolVersion, expected.boltVersion);
    });

    test('wrong-password reports the auth error code and no server', async () => {
      const report = await run('wrong-password');
      expectNeo4jError(report, 'Neo.ClientError.Security.Unauthorized');
      assert.equal(report.server, null);
    });

    test('large-result streams 5 MB intact and in order', async () => {
      assert.deepEqual(expectOk(await run('large-result')), {
        rows: 5000,
        payloadBytes: 5_000_000,
        sha256: expectedLargeResultSha256(5000, 1000),
        inOrder: true,
      });
    });

    test('concurrent: 50 sessions hold a transaction open at the same time', async () => {
      assert.deepEqual(expectOk(await run('concurrent')), {
        sessions: 50,
        succeeded: 50,
        failed: 0,
        distinctValues: 50,
        heldOpenTogether: true,
      });
    });

    test('concurrent reports every session failure with the partial counts', async () => {
      const closedPort = await freePort();
      const report = await run('concurrent', { uri: `bolt://127.0.0.1:${closedPort}`, extra: { concurrency: 5 } });
      assert.equal(report.ok, false);
      assert.match(report.error?.className ?? '', expected.refusedClassName);
      assert.equal(report.error?.code === null || report.error?.code === 'N/A', true, JSON.stringify(report.error));
      assert.deepEqual(report.result, {
        sessions: 5,
        succeeded: 0,
        failed: 5,
        distinctValues: 0,
        heldOpenTogether: false,
      });
      assert.equal(report.server, null);
    });
  });
}
