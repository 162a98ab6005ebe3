/**
 * The official Go driver (v5, its own Bolt implementation) through the proxy to the real Neo4j 5.26:
 * every client scenario, compared with direct where the promise is "as direct".
 */
import { defineSharedNeo4jProxySuites, processClient } from './client-suite.ts';

defineSharedNeo4jProxySuites([processClient('go', '5')]);
