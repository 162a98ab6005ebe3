/**
 * The real-client checks every driver must pass through the proxy: each scenario of scripts/clients
 * run through the proxy, compared with a direct run where "the same as direct" is the promise
 * (versions, errors), and each followed by what the proxy must have counted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  type BasicScenarioName,
  type ClientName,
  type DriverLine,
  ensureClient,
  expectedLargeResultSha256,
  runClientScenario,
} from '../../scripts/clients/run-scenario.ts';
import { DEFAULT_NEO4J_VERSION } from '../../scripts/neo4j/local-neo4j.ts';
import type { PoolingMode } from '../../src/proxy/index.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { type ClientReport, type JsDriverLine, runJsScenario, type ScenarioConnection } from './js-client.ts';
import { startTestProxy, type TestProxy } from './support.ts';

export interface ScenarioClient {
  /** e.g. "python driver 5.x". */
  readonly name: string;
  /** The user_agent label the proxy gives this client's connections. */
  readonly userAgent: string;
  /** The Bolt version it agrees on with Neo4j 5.26 (which speaks up to 5.8). */
  readonly boltVersionWith526: RegExp;
  prepare(): Promise<void>;
  run<S extends BasicScenarioName>(scenario: S, connection: ScenarioConnection): Promise<ClientReport<S>>;
}

export function jsClient(driverLine: JsDriverLine): ScenarioClient {
  return {
    name: `neo4j-driver ${driverLine}.x (JavaScript)`,
    userAgent: `neo4j-javascript/${driverLine}`,
    boltVersionWith526: /^5\.8$/,
    prepare: async () => {},
    run: (scenario, connection) => runJsScenario(driverLine, scenario, connection),
  };
}

/**
 * The Python, Java and Go scenario clients announce themselves as "neo4j-pool-sidecar-scenario/<client>
 * neo4j-<client>/<version>": the first product is not a driver, so they are labelled "other" (as the
 * census labels them).
 */
export function processClient<C extends ClientName>(client: C, driverLine: DriverLine<C>): ScenarioClient {
  return {
    name: `${client} driver ${driverLine}${driverLine.includes('.') ? '' : '.x'}`,
    userAgent: 'other',
    // The 4.4 line stops at Bolt 4.4; every 5.x and 6.x line meets 5.26 at 5.8.
    boltVersionWith526: driverLine === '4.4' ? /^4\.4$/ : /^5\.8$/,
    prepare: async () => {
      await ensureClient(client, driverLine);
    },
    run: (scenario, connection) => runClientScenario(client, scenario, { ...connection, driverLine }),
  };
}

export interface ProxySuiteTarget {
  /** The server behind the proxy, and how to log in. */
  readonly direct: ScenarioConnection;
  readonly proxy: TestProxy;
  /** "Neo4j/5.26.30" */
  readonly serverAgent: string;
}

export interface ProxySuiteExpectations {
  /** Bolt version the client and this server agree on, e.g. /^5\.8$/ or /^6\./. */
  readonly boltVersion: RegExp;
}

function expectOk<S extends BasicScenarioName>(report: ClientReport<S>): NonNullable<ClientReport<S>['result']> {
  assert.equal(report.ok, true, `expected ${report.client} ${report.scenario} to succeed: ${JSON.stringify(report)}`);
  assert.ok(report.result, `${report.client} ${report.scenario} reported no result`);
  return report.result;
}

/** The proxy keys errors on the GQL status unless the server sent only the generic 50N42 (or none). */
function proxyErrorCode(error: NonNullable<ClientReport['error']>): string {
  return error.gqlStatus && error.gqlStatus !== '50N42' ? error.gqlStatus : (error.code ?? 'unknown');
}

export function defineProxyClientSuite(
  client: ScenarioClient,
  target: () => ProxySuiteTarget,
  expectations: ProxySuiteExpectations,
): void {
  describe(`${client.name} through the proxy`, { timeout: 10 * 60_000 }, () => {
    const proxied = (uri?: string): ScenarioConnection => ({ ...target().direct, uri: uri ?? target().proxy.boltUri });
    const metric = (name: string, labels: Record<string, string> = {}) => target().proxy.metric(name, labels);
    const proxyQueries = () => metric('neo4j_query_duration_seconds_count', { source: 'proxy' });

    test('prepare the client', async () => {
      await client.prepare();
    });

    test('auto-commit query: same result, server and Bolt version as direct', async (t) => {
      const openedBefore = await metric('neo4j_proxy_client_connections_opened_total', {
        user_agent: client.userAgent,
      });
      const queriesBefore = await proxyQueries();
      const direct = await client.run('autocommit', target().direct);
      const report = await client.run('autocommit', proxied());
      assert.deepEqual(expectOk(report), { records: 1, value: 1 });
      assert.deepEqual(report.result, direct.result);
      assert.equal(report.server?.agent, target().serverAgent);
      assert.equal(report.server?.protocolVersion, direct.server?.protocolVersion);
      assert.match(report.server?.protocolVersion ?? '', expectations.boltVersion);
      assert.equal(report.server?.address, target().proxy.proxy.advertisedAddress);
      const version = report.server?.protocolVersion ?? '';
      t.diagnostic(
        `${client.name} ${report.driverVersion} via the proxy: Bolt ${version} with ${report.server?.agent}`,
      );
      assert.ok((await metric('neo4j_proxy_bolt_versions_total', { version })) >= 1);
      assert.ok(
        (await metric('neo4j_proxy_client_connections_opened_total', { user_agent: client.userAgent })) > openedBefore,
      );
      assert.ok((await proxyQueries()) >= queriesBefore + 1);
    });

    test('explicit transaction', async () => {
      const queriesBefore = await proxyQueries();
      assert.deepEqual(expectOk(await client.run('explicit-tx', proxied())), {
        queries: 2,
        createdIdMatches: true,
        deleted: 1,
        committed: true,
        hasBookmark: true,
      });
      assert.ok((await proxyQueries()) >= queriesBefore + 2);
    });

    test('managed read and write over neo4j://: the follow-up connections reach the proxy', async () => {
      const rewrittenBefore = await metric('neo4j_proxy_routing_tables_rewritten_total');
      const queriesBefore = await proxyQueries();
      const routingUri = target().proxy.routingUri;
      const read = await client.run('managed-read', proxied(routingUri));
      assert.deepEqual(expectOk(read), { value: 1, database: 'neo4j' });
      const write = await client.run('managed-write', proxied(routingUri));
      assert.deepEqual(expectOk(write), { nodesCreated: 1, nodesDeleted: 1, database: 'neo4j' });
      // Both queries ran on a server the client found in a routing table: the proxy, not Neo4j itself.
      assert.equal(read.server?.address, target().proxy.proxy.advertisedAddress);
      assert.equal(write.server?.address, target().proxy.proxy.advertisedAddress);
      assert.ok((await metric('neo4j_proxy_routing_tables_rewritten_total')) >= rewrittenBefore + 2);
      assert.ok((await proxyQueries()) >= queriesBefore + 2);
    });

    test('a failing query: the same error as direct, counted by its code', async () => {
      const direct = await client.run('failing-query', target().direct);
      assert.ok(direct.error, 'the query fails directly');
      const code = proxyErrorCode(direct.error);
      const errorsBefore = await metric('neo4j_query_errors_total', { source: 'proxy', code });
      const report = await client.run('failing-query', proxied());
      assert.equal(report.ok, false);
      assert.deepEqual(report.error, direct.error);
      assert.equal(report.error?.code, 'Neo.ClientError.Statement.SyntaxError');
      assert.equal(await metric('neo4j_query_errors_total', { source: 'proxy', code }), errorsBefore + 1);
    });

    test("a wrong password: Neo4j's authentication failure, counted", async () => {
      const direct = await client.run('wrong-password', target().direct);
      const authBefore = await metric('neo4j_proxy_auth_failures_total', { user_agent: client.userAgent });
      const report = await client.run('wrong-password', proxied());
      assert.equal(report.ok, false);
      assert.equal(report.error?.code, 'Neo.ClientError.Security.Unauthorized');
      assert.deepEqual(report.error, direct.error);
      assert.equal(report.server, null);
      assert.equal(await metric('neo4j_proxy_auth_failures_total', { user_agent: client.userAgent }), authBefore + 1);
    });

    test('a result of several MB streamed intact', async () => {
      const bytesBefore = await metric('neo4j_proxy_bytes_total', { direction: 'server_to_client' });
      assert.deepEqual(expectOk(await client.run('large-result', proxied())), {
        rows: 5000,
        payloadBytes: 5_000_000,
        sha256: expectedLargeResultSha256(),
        inOrder: true,
      });
      assert.ok(
        (await metric('neo4j_proxy_bytes_total', { direction: 'server_to_client' })) >= bytesBefore + 5_000_000,
      );
    });

    test('50 concurrent sessions, each holding a transaction open', async () => {
      const openedBefore = await metric('neo4j_proxy_client_connections_opened_total');
      const report = await client.run('concurrent', proxied());
      assert.deepEqual(expectOk(report), {
        sessions: 50,
        succeeded: 50,
        failed: 0,
        distinctValues: 50,
        heldOpenTogether: true,
      });
      assert.ok((await metric('neo4j_proxy_client_connections_opened_total')) >= openedBefore + 50);
    });
  });
}

/**
 * The pooling modes every client suite runs in: each mode gets its own proxy, so a scenario passes
 * with an upstream per client (off) and with upstreams lent from the pool (session). Set
 * PROXY_SUITE_POOLING_MODES=session (comma-separated) to run fewer while working on one.
 */
export const SUITE_POOLING_MODES: readonly PoolingMode[] = suitePoolingModes();

function suitePoolingModes(): PoolingMode[] {
  const all: PoolingMode[] = ['off', 'session', 'transaction'];
  const chosen = process.env.PROXY_SUITE_POOLING_MODES;
  if (!chosen) return all;
  return chosen.split(',').map((mode) => {
    const known = all.find((candidate) => candidate === mode.trim());
    if (known === undefined) throw new Error(`PROXY_SUITE_POOLING_MODES: unknown mode ${mode}`);
    return known;
  });
}

/**
 * The suite for each client and pooling mode through a proxy in front of the test run's shared Neo4j
 * 5.26, which the file starts before its tests and stops after them. 5.26 speaks Bolt up to 5.8, and
 * every 5.x and 6.x driver agrees on that with it; the 4.4 line on 4.4.
 */
export function defineSharedNeo4jProxySuites(
  clients: readonly ScenarioClient[],
  modes: readonly PoolingMode[] = SUITE_POOLING_MODES,
): void {
  let server: TestNeo4j;

  before(async () => {
    server = await sharedNeo4j();
  });
  after(async () => {
    await releaseSharedNeo4j();
  });

  for (const mode of modes) {
    describe(`pooling ${mode}`, () => {
      let proxy: TestProxy;
      before(async () => {
        proxy = await startTestProxy(server.uri, { pooling: { mode } });
      });
      after(async () => {
        await proxy?.stop();
      });
      const target = (): ProxySuiteTarget => ({
        direct: { uri: server.uri, user: server.username, password: server.password },
        proxy,
        serverAgent: `Neo4j/${DEFAULT_NEO4J_VERSION}`,
      });
      for (const client of clients) {
        defineProxyClientSuite(client, target, { boltVersion: client.boltVersionWith526 });
      }
    });
  }
}
