/**
 * The second server line: Neo4j 2026.x on a Java 21+ JDK, where Bolt 6 is negotiated through the
 * manifest handshake. Proves startLocalNeo4j runs it, which driver line negotiates which Bolt version,
 * and that the 6.x Python and Java drivers pass every scenario the 5.x ones do.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import neo4j from 'neo4j-driver';
import neo4j5 from 'neo4j-driver-5';
import { findModernJdk, MODERN_NEO4J_VERSION } from '../../scripts/clients/modern-neo4j.ts';
import {
  type ClientName,
  type DriverLine,
  ensureClient,
  expectedLargeResultSha256,
  type RunScenarioOptions,
  runClientScenario,
  SCENARIO_SERVER_CONFIG,
} from '../../scripts/clients/run-scenario.ts';
import { type LocalNeo4j, startLocalNeo4j } from '../../scripts/neo4j/local-neo4j.ts';
import { expectNeo4jError, expectOk } from './direct-suite.ts';

test('findModernJdk returns undefined when no JDK is new enough', () => {
  assert.equal(findModernJdk({ searchRoot: '/nonexistent/jvm' }), undefined);
  assert.equal(findModernJdk({ minimumMajor: 1000 }), undefined);
});

const modernJdk = findModernJdk();

describe(`Neo4j ${MODERN_NEO4J_VERSION} on a Java 21+ JDK`, {
  skip: modernJdk ? false : 'no JDK >= 21 under /usr/lib/jvm (or NEO4J_MODERN_JAVA_HOME)',
  timeout: 20 * 60_000,
}, () => {
  let server: LocalNeo4j | undefined;
  let connection: RunScenarioOptions;

  before(async () => {
    const [started] = await Promise.all([
      startLocalNeo4j({
        version: MODERN_NEO4J_VERSION,
        javaHome: modernJdk,
        name: 'clients-modern',
        extraConfig: { ...SCENARIO_SERVER_CONFIG },
      }),
      ensureClient('python', '6'),
      ensureClient('java', '6'),
    ]);
    server = started;
    connection = { uri: started.uri, user: started.username, password: started.password };
  });

  after(async () => {
    await server?.destroy();
  });

  test('neo4j-driver 6 negotiates Bolt 6, neo4j-driver 5 stays on 5.x', async () => {
    const auth = { user: connection.user, password: connection.password };
    const driver6 = neo4j.driver(connection.uri, neo4j.auth.basic(auth.user, auth.password));
    const driver5 = neo4j5.driver(connection.uri, neo4j5.auth.basic(auth.user, auth.password));
    try {
      const info6 = await driver6.getServerInfo();
      assert.equal(info6.agent, `Neo4j/${MODERN_NEO4J_VERSION}`);
      const bolt6 = info6.protocolVersion;
      assert.equal(bolt6?.getMajor(), 6, `negotiated ${bolt6?.getMajor()}.${bolt6?.getMinor()}`);
      // neo4j-driver 5 tops out at Bolt 5.8, whatever the server offers.
      const info5 = await driver5.getServerInfo();
      assert.equal(info5.protocolVersion, 5.8);
    } finally {
      await Promise.all([driver6.close(), driver5.close()]);
    }
  });

  const clients: ClientName[] = ['python', 'java'];
  const lines: DriverLine[] = ['5', '6'];
  for (const client of clients) {
    for (const driverLine of lines) {
      test(`${client} driver ${driverLine}.x negotiates Bolt ${driverLine}.x`, async () => {
        const report = await runClientScenario(client, 'autocommit', { ...connection, driverLine });
        assert.deepEqual(expectOk(report), { records: 1, value: 1 });
        assert.match(report.driverVersion, new RegExp(`^${driverLine}\\.`));
        assert.equal(report.server?.agent, `Neo4j/${MODERN_NEO4J_VERSION}`);
        assert.match(report.server?.protocolVersion ?? '', new RegExp(`^${driverLine}\\.\\d+$`));
      });
    }

    test(`${client} driver 6.x passes every scenario`, async () => {
      const run = (scenario: Parameters<typeof runClientScenario>[1], overrides: Partial<RunScenarioOptions> = {}) =>
        runClientScenario(client, scenario, { ...connection, driverLine: '6', ...overrides });

      assert.deepEqual(expectOk(await run('explicit-tx')), {
        queries: 2,
        createdIdMatches: true,
        deleted: 1,
        committed: true,
        hasBookmark: true,
      });
      const routingUri = connection.uri.replace(/^bolt:/, 'neo4j:');
      assert.deepEqual(expectOk(await run('managed-read', { uri: routingUri })), { value: 1, database: 'neo4j' });
      assert.deepEqual(expectOk(await run('managed-write', { uri: routingUri })), {
        nodesCreated: 1,
        nodesDeleted: 1,
        database: 'neo4j',
      });

      // Unlike 5.26, this server sends GQL statuses, with the detail nested as a cause.
      const syntax = expectNeo4jError(await run('failing-query'), 'Neo.ClientError.Statement.SyntaxError');
      assert.equal(syntax.gqlStatus, '42001');
      assert.equal(syntax.causeGqlStatus, '42I06');
      const auth = expectNeo4jError(await run('wrong-password'), 'Neo.ClientError.Security.Unauthorized');
      assert.equal(auth.gqlStatus, '42NFF');

      assert.deepEqual(expectOk(await run('large-result')), {
        rows: 5000,
        payloadBytes: 5_000_000,
        sha256: expectedLargeResultSha256(),
        inOrder: true,
      });
      const concurrent = await run('concurrent');
      assert.deepEqual(expectOk(concurrent), {
        sessions: 50,
        succeeded: 50,
        failed: 0,
        distinctValues: 50,
        heldOpenTogether: true,
      });
      assert.match(concurrent.server?.protocolVersion ?? '', /^6\./);
    });
  }
});
