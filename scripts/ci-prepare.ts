/**
 * Installs what the test suite needs, all at once, so CI can overlap the slow first-run installs
 * (helm built from source, Neo4j jars, driver clients in Python, Java and Go, schemathesis, Debian
 * packages) with lint and the build.
 * Every test still calls the same ensure* functions itself, so `npm test` alone works on a fresh
 * machine; this only warms the caches earlier. Failures are reported and left to the tests.
 */
import { ensureCelery, ensureRedisServer } from './clients/celery.ts';
import { ensureGoClient } from './clients/go.ts';
import { ensureJavaClient } from './clients/java.ts';
import { MODERN_NEO4J_VERSION } from './clients/modern-neo4j.ts';
import { ensurePythonClient } from './clients/python.ts';
import { ensureNeo4jJars } from './neo4j/local-neo4j.ts';
import { ensureDashboardLintPort } from './tools/dashboard-linter.ts';
import { ensureDebianPackages } from './tools/debian.ts';
import { ensureHelm } from './tools/helm.ts';
import { ensurePrometheus } from './tools/prometheus.ts';
import { ensureSchemathesis } from './tools/schemathesis.ts';

const log = (line: string) => console.log(`[prepare] ${line}`);

async function timed(name: string, work: () => Promise<unknown>): Promise<void> {
  const started = Date.now();
  try {
    await work();
    log(`${name}: ready in ${Math.round((Date.now() - started) / 1000)} s`);
  } catch (error) {
    log(`${name}: FAILED after ${Math.round((Date.now() - started) / 1000)} s: ${String(error).slice(0, 500)}`);
  }
}

await Promise.all([
  timed('helm', () => ensureHelm(log)),
  timed('dashboard lint', () => ensureDashboardLintPort(log)),
  // apt-get takes one lock: the Debian packages go one after the other.
  timed('debian packages', async () => {
    await ensurePrometheus(log);
    await ensureDebianPackages(['tini'], ['/usr/bin/tini'], log);
    await ensureRedisServer();
  }),
  timed('neo4j jars', async () => {
    await ensureNeo4jJars(undefined, log);
    await ensureNeo4jJars(MODERN_NEO4J_VERSION, log);
  }),
  timed('java clients', async () => {
    await ensureJavaClient({ driverLine: '5' });
    await ensureJavaClient({ driverLine: '6' });
  }),
  timed('go client', () => ensureGoClient({ log })),
  timed('python clients', async () => {
    await ensurePythonClient({ driverLine: '5' });
    await ensurePythonClient({ driverLine: '6' });
    await ensurePythonClient({ driverLine: '4.4' });
    await ensureCelery();
    await ensureSchemathesis();
  }),
]);
