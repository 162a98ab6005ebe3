/**
 * The real-client suite against a current Neo4j (2025.10+, on the second, Java 21+ JDK), so that Bolt 6
 * and the manifest v1 handshake it requires are relayed for a real server: the 6.x drivers of all three
 * languages negotiate Bolt 6 through the proxy, the 5.x ones Bolt 5.8.
 */
import { after, before, describe } from 'node:test';
import { findModernJdk, MODERN_NEO4J_VERSION } from '../../scripts/clients/modern-neo4j.ts';
import { SCENARIO_SERVER_CONFIG } from '../../scripts/clients/run-scenario.ts';
import { type LocalNeo4j, startLocalNeo4j } from '../../scripts/neo4j/local-neo4j.ts';
import {
  defineProxyClientSuite,
  jsClient,
  type ProxySuiteTarget,
  processClient,
  type ScenarioClient,
  SUITE_POOLING_MODES,
} from './client-suite.ts';
import { startTestProxy, type TestProxy } from './support.ts';

const modernJdk = findModernJdk();

describe(`through the proxy to Neo4j ${MODERN_NEO4J_VERSION} on a Java 21+ JDK`, {
  skip: modernJdk ? false : 'no JDK >= 21 under /usr/lib/jvm (or NEO4J_MODERN_JAVA_HOME)',
  timeout: 30 * 60_000,
}, () => {
  let server: LocalNeo4j | undefined;

  before(async () => {
    server = await startLocalNeo4j({
      version: MODERN_NEO4J_VERSION,
      javaHome: modernJdk,
      name: 'proxy-modern',
      extraConfig: { ...SCENARIO_SERVER_CONFIG },
    });
  });
  after(async () => {
    await server?.destroy();
  });

  const clients: [ScenarioClient, RegExp][] = [
    [jsClient('6'), /^6\.\d+$/],
    [jsClient('5'), /^5\.8$/],
    [processClient('python', '6'), /^6\.\d+$/],
    [processClient('python', '5'), /^5\.8$/],
    [processClient('java', '6'), /^6\.\d+$/],
    [processClient('java', '5'), /^5\.8$/],
  ];
  for (const mode of SUITE_POOLING_MODES) {
    describe(`pooling ${mode}`, () => {
      let proxy: TestProxy | undefined;
      before(async () => {
        if (!server) throw new Error('the server did not start');
        proxy = await startTestProxy(server.uri, { pooling: { mode } });
      });
      after(async () => {
        await proxy?.stop();
      });
      const target = (): ProxySuiteTarget => {
        if (!server || !proxy) throw new Error('the server did not start');
        return {
          direct: { uri: server.uri, user: server.username, password: server.password },
          proxy,
          serverAgent: `Neo4j/${MODERN_NEO4J_VERSION}`,
        };
      };
      for (const [client, boltVersion] of clients) defineProxyClientSuite(client, target, { boltVersion });
    });
  }
});
