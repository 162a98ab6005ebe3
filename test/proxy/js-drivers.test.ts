/**
 * neo4j-driver for JavaScript, latest 5.x and 6.x, through the proxy to the real Neo4j 5.26: every
 * client scenario, compared with direct where the promise is "as direct".
 */
import { defineSharedNeo4jProxySuites, jsClient } from './client-suite.ts';

defineSharedNeo4jProxySuites([jsClient('6'), jsClient('5')]);
