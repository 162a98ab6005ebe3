/**
 * The official Python driver (5.x, the line most applications run) through the proxy to the real Neo4j
 * 5.26: every client scenario, compared with direct where the promise is "as direct". The 6.x line is
 * covered against Neo4j 2026.x in modern-neo4j.test.ts.
 */
import { defineSharedNeo4jProxySuites, processClient } from './client-suite.ts';

defineSharedNeo4jProxySuites([processClient('python', '5')]);
