/**
 * The official Python driver through the proxy to the real Neo4j 5.26: the 5.x line (what most
 * applications run) and the 4.4 line (Bolt 4.4, the login inside HELLO), every client scenario,
 * compared with direct where the promise is "as direct". The 6.x line is covered against Neo4j 2026.x
 * in modern-neo4j.test.ts.
 */
import { defineSharedNeo4jProxySuites, processClient } from './client-suite.ts';

defineSharedNeo4jProxySuites([processClient('python', '5'), processClient('python', '4.4')]);
