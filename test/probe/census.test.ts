/**
 * The server census against a Neo4j of this file's own (the counts must not include other test files'
 * clients): connections of a second real driver, churn from short-lived drivers, long transactions.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import neo4j, { type Driver } from 'neo4j-driver';
import type { LocalNeo4j } from '../../scripts/neo4j/local-neo4j.ts';
import { AlertEvaluator } from '../../src/alerts/index.ts';
import { configSchema, type SidecarConfigInput } from '../../src/config/index.ts';
import { instrumentDriver } from '../../src/instrument/index.ts';
import { PrometheusSink, Recorder } from '../../src/metrics/index.ts';
import { Census } from '../../src/probe/census.ts';
import { boltEndpoint, readConnectionCounter } from '../../src/probe/connection-counter.ts';
import { type CensusReport, createProbesComponent } from '../../src/probe/index.ts';
import { metricValue } from '../support/metrics.ts';
import { privateNeo4j } from '../support/neo4j.ts';
import { warmUpCensusQueries } from './warm-up.ts';

const QUIET = { logging: { level: 'error' as const, logger: () => {} } };

let server: LocalNeo4j;
before(async () => {
  server = await privateNeo4j('census');
  await warmUpCensusQueries(server);
});
after(async () => {
  await server?.destroy();
});

function clientDriver(): Driver {
  return neo4j.driver(server.uri, neo4j.auth.basic(server.username, server.password), QUIET);
}

function setUp(input: SidecarConfigInput = {}) {
  const config = configSchema.parse({
    ...input,
    neo4j: { uri: server.uri, password: server.password },
    probes: {
      // The census must mark the server's current connection id itself, with no fresh-connect probe.
      freshConnect: { enabled: false },
      census: { longTransactionSeconds: 1 },
      ...input.probes,
    },
  });
  const sink = new PrometheusSink();
  const recorder = new Recorder({ sinks: [sink] });
  const driver = neo4j.driver(server.uri, neo4j.auth.basic(server.username, server.password), {
    ...QUIET,
    userAgent: 'neo4j-pool-sidecar/0.1.0',
  });
  const ownPool = instrumentDriver(driver, { recorder, poolName: 'sidecar', source: 'sidecar' });
  const component = createProbesComponent({ config, driver, ownPool, recorder });
  const census = async (): Promise<CensusReport> => {
    const results = await component.runOnce();
    const result = results.find((candidate) => candidate.probe === 'census');
    assert.equal(result?.ok, true, JSON.stringify(result));
    return component.census!.last!;
  };
  const close = async () => {
    await component.stop();
    await driver.close();
  };
  return { config, recorder, registry: sink.registry, component, census, close };
}

describe('the server census', () => {
  it('counts the connections a second real driver opens, by connector, user-agent family and host', async () => {
    const { census, registry, close } = setUp();
    const other = clientDriver();
    const sessions = Array.from({ length: 3 }, () => other.session());
    try {
      const before = await census();
      assert.equal(before.visibility, 'all', 'Community edition shows every connection to every user');
      assert.equal(before.connections.byUserAgentFamily['neo4j-javascript/6'] ?? 0, 0);

      const transactions = await Promise.all(sessions.map((session) => session.beginTransaction()));
      await Promise.all(transactions.map((tx) => tx.run('RETURN 1')));
      const during = await census();
      assert.equal(during.connections.byUserAgentFamily['neo4j-javascript/6'], 3);
      assert.equal(during.connections.byConnector.bolt, during.connections.total);
      assert.deepEqual(during.connections.byClientHost, [{ host: '127.0.0.1', connections: during.connections.total }]);
      assert.equal(during.opened.stillOpen, 3, 'the three new connections, not the sidecar own');
      assert.equal(during.opened.closedBeforeCensus, 0);
      assert.equal(
        await metricValue(registry, 'neo4j_census_connections', {
          connector: 'bolt',
          user_agent_family: 'neo4j-javascript/6',
        }),
        3,
      );
      assert.equal(await metricValue(registry, 'neo4j_census_connections_opened_total', { connector: 'bolt' }), 3);
      assert.equal(
        await metricValue(registry, 'neo4j_census_client_connections', { client_host: '127.0.0.1' }),
        during.connections.total,
      );
      assert.equal(
        await metricValue(registry, 'neo4j_census_connections_by_age', { le: '+Inf' }),
        during.connections.total,
      );
      assert.equal(await metricValue(registry, 'neo4j_census_sees_all_connections'), 1);

      await Promise.all(transactions.map((tx) => tx.rollback()));
      await Promise.all(sessions.map((session) => session.close()));
      await other.close();
      const afterwards = await census();
      assert.equal(afterwards.connections.byUserAgentFamily['neo4j-javascript/6'] ?? 0, 0);
      assert.equal(afterwards.opened.sinceLastCensus, 0);
    } finally {
      await other.close();
      await close();
    }
  });

  it('shows a loop of short-lived drivers as churn and fires the churn alert', async () => {
    const { census, recorder, registry, config, close } = setUp({
      alerts: {
        thresholds: { connectionChurn: { warning: 0.2, critical: null, window: '30s', for: '0s' } },
      },
    });
    const evaluator = new AlertEvaluator({ config: config.alerts, recorder });
    const shortLived = 10;
    try {
      await census();
      evaluator.evaluate();
      for (let i = 0; i < shortLived; i++) {
        const perTask = clientDriver();
        await perTask.executeQuery('RETURN 1');
        await perTask.close();
      }
      const report = await census();
      assert.equal(report.opened.closedBeforeCensus, shortLived);
      assert.equal(report.opened.sinceLastCensus, shortLived);
      assert.ok((report.opened.perSecond ?? 0) > 0);
      assert.equal(
        await metricValue(registry, 'neo4j_census_connections_opened_total', { connector: 'closed_before_census' }),
        shortLived,
      );

      const firing = evaluator.evaluate().filter((alert) => alert.state === 'firing');
      assert.deepEqual(
        firing.map((alert) => `${alert.alert}/${alert.severity}`),
        ['Neo4jPoolConnectionChurnHigh/warning'],
      );
      assert.match(
        firing[0]!.description,
        /accepted .* new connections per second over the last 30s \(threshold 200m\/s\)/,
      );
      assert.equal(
        await metricValue(registry, 'neo4j_sidecar_alert_active', {
          alert: 'Neo4jPoolConnectionChurnHigh',
          severity: 'warning',
        }),
        1,
      );
    } finally {
      await close();
    }
  });

  it('fails a census started while the previous one still runs, rather than counting the same connections twice', async () => {
    const sink = new PrometheusSink();
    const recorder = new Recorder({ sinks: [sink] });
    const driver = neo4j.driver(server.uri, neo4j.auth.basic(server.username, server.password), {
      ...QUIET,
      userAgent: 'neo4j-pool-sidecar/0.1.0',
    });
    let counterReads = 0;
    const census = new Census({
      recorder,
      topClientHosts: 10,
      longTransactionSeconds: 30,
      // The driver's pool is warm after the first run and opens nothing more; the counter reads are the sidecar's own.
      ownConnectionsOpened: () => counterReads,
      timeoutMs: 5000,
    });
    const readCounter = () => {
      counterReads++;
      return readConnectionCounter(boltEndpoint(server.uri), {
        userAgent: 'neo4j-pool-sidecar/0.1.0',
        timeoutMs: 5000,
      });
    };
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    try {
      await census.run({ driver, readCounter });
      for (let i = 0; i < 3; i++) {
        const perTask = clientDriver();
        await perTask.executeQuery('RETURN 1');
        await perTask.close();
      }
      // A run the probe timeout gave up on, still going after its counter read. A second run meanwhile
      // would read a newer counter and leave a high-water mark above this run's counter, which this
      // run would then take for a server restart and count every connection since id 0.
      let counterRead = () => {};
      const slowHasReadItsCounter = new Promise<void>((resolve) => {
        counterRead = resolve;
      });
      const slow = census.run({
        driver,
        readCounter: async () => {
          const id = await readCounter();
          counterRead();
          await held;
          return id;
        },
      });
      await slowHasReadItsCounter;
      await assert.rejects(census.run({ driver, readCounter }), /previous census is still running/);
      release();
      const report = await slow;
      assert.equal(report.opened.serverRestarted, false);
      assert.equal(report.opened.closedBeforeCensus, 3);
      assert.equal(
        await metricValue(sink.registry, 'neo4j_census_connections_opened_total', {
          connector: 'closed_before_census',
        }),
        3,
      );
    } finally {
      release();
      await driver.close();
    }
  });

  it('lists a transaction open longer than the threshold, never its query, and alerts on its age', async () => {
    const { census, recorder, registry, config, close } = setUp({
      alerts: { thresholds: { longRunningTransactions: { warning: 1, critical: 3600, for: '0s' } } },
    });
    const evaluator = new AlertEvaluator({ config: config.alerts, recorder });
    const other = clientDriver();
    const session = other.session({ database: 'neo4j' });
    try {
      const tx = await session.beginTransaction();
      await tx.run('MATCH (secret:Secret {token: $token}) RETURN secret', { token: 'do-not-leak' });
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const report = await census();
      assert.equal(report.transactions.longRunning, 1);
      const [longest] = report.transactions.longest;
      assert.equal(longest?.database, 'neo4j');
      assert.equal(longest?.username, 'neo4j');
      assert.ok((longest?.elapsedSeconds ?? 0) >= 1);
      assert.doesNotMatch(JSON.stringify(report), /Secret|do-not-leak/);
      assert.equal(await metricValue(registry, 'neo4j_census_long_running_transactions', { database: 'neo4j' }), 1);
      assert.ok((await metricValue(registry, 'neo4j_census_oldest_transaction_seconds', { database: 'neo4j' })) >= 1);
      const firing = evaluator.evaluate().filter((alert) => alert.state === 'firing');
      assert.deepEqual(
        firing.map((alert) => `${alert.alert}/${alert.severity}/${alert.labels.database}`),
        ['Neo4jPoolLongRunningTransaction/warning/neo4j'],
      );

      await tx.rollback();
      const after = await census();
      assert.equal(after.transactions.longRunning, 0);
      assert.equal(await metricValue(registry, 'neo4j_census_long_running_transactions', { database: 'neo4j' }), 0);
      assert.deepEqual(evaluator.evaluate(), []);
    } finally {
      await session.close();
      await other.close();
      await close();
    }
  });
});
