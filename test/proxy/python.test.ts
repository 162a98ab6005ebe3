/**
 * The official Python driver (5.x, the line most applications run) through the proxy to the real Neo4j
 * 5.26: every client scenario, compared with direct where the promise is "as direct". The 6.x line is
 * covered against Neo4j 2026.x in modern-neo4j.test.ts.
 */
import { after, before } from 'node:test';
import { DEFAULT_NEO4J_VERSION } from '../../scripts/neo4j/local-neo4j.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { defineProxyClientSuite, type ProxySuiteTarget, processClient } from './client-suite.ts';
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

defineProxyClientSuite(processClient('python', '5'), target, { boltVersion: /^5\.8$/ });
