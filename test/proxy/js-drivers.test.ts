/**
 * neo4j-driver for JavaScript, latest 5.x and 6.x, through the proxy to the real Neo4j 5.26: every
 * client scenario, compared with direct where the promise is "as direct".
 */
import { after, before } from 'node:test';
import { DEFAULT_NEO4J_VERSION } from '../../scripts/neo4j/local-neo4j.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { defineProxyClientSuite, jsClient, type ProxySuiteTarget } from './client-suite.ts';
import { startTestProxy, type TestProxy } from './support.ts';

let server: TestNeo4j;
let proxy: TestProxy;

before(async () => {
  server = await sharedNeo4j();
  proxy = await startTestProxy(server.uri);
});
after(async () => {
  await proxy?.stop();
  await releaseSharedNeo4j();
});

const target = (): ProxySuiteTarget => ({
  direct: { uri: server.uri, user: server.username, password: server.password },
  proxy,
  serverAgent: `Neo4j/${DEFAULT_NEO4J_VERSION}`,
});

// Neo4j 5.26 speaks Bolt up to 5.8; both driver lines agree on that with it.
defineProxyClientSuite(jsClient('6'), target, { boltVersion: /^5\.8$/ });
defineProxyClientSuite(jsClient('5'), target, { boltVersion: /^5\.8$/ });
