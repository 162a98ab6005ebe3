/**
 * `npm start`: the sidecar, ready to look at.
 *
 * With NEO4J_URI set, this is just `neo4j-pool-sidecar run`. Without it, it starts a local Neo4j
 * (scripts/neo4j) and a small synthetic worker load, so /metrics shows live pool and query
 * numbers at once. The load is light (a few queries per second) and stops after
 * DEMO_LOAD_SECONDS (default one hour).
 */
import neo4j, { type Driver } from 'neo4j-driver';
import { defaultComponents } from '../src/components.ts';
import { ConfigError, loadConfig } from '../src/config/index.ts';
import { instrumentDriver } from '../src/instrument/index.ts';
import { createLogger } from '../src/logger.ts';
import type { Recorder } from '../src/metrics/index.ts';
import { isBoltProxyComponent } from '../src/proxy/index.ts';
import { startSidecar } from '../src/server/index.ts';
import { type LocalNeo4j, startLocalNeo4j } from './neo4j/local-neo4j.ts';

const configFile = (() => {
  const index = process.argv.findIndex((arg) => arg === '--config' || arg === '-c');
  return index >= 0 ? process.argv[index + 1] : undefined;
})();

let localNeo4j: LocalNeo4j | undefined;
const env = { ...process.env };
if (!env.NEO4J_URI) {
  console.log('NEO4J_URI is not set: starting a local Neo4j Community server for the demo...');
  localNeo4j = await startLocalNeo4j({ name: 'demo', log: (line) => console.log(line) });
  env.NEO4J_URI = localNeo4j.uri;
  env.NEO4J_PASSWORD = localNeo4j.password;
}

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig({ ...(configFile ? { file: configFile } : {}), env });
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    await localNeo4j?.destroy();
    process.exit(2);
  }
  throw error;
}

const logger = createLogger({ level: config.log.level, pretty: config.log.pretty });
const sidecar = await startSidecar(config, { logger, components: defaultComponents });
const stopLoad = localNeo4j ? startDemoLoad(sidecar.recorder, env.NEO4J_URI!, env.NEO4J_PASSWORD!) : undefined;
const demoProxy = sidecar.components.find(isBoltProxyComponent)?.proxy;
const stopProxyLoad =
  localNeo4j && demoProxy ? startProxyDemoLoad(demoProxy.advertisedAddress, env.NEO4J_PASSWORD!) : undefined;

const metricsUrl = `http://${sidecar.httpAddress.address}:${sidecar.httpAddress.port}`;
console.log(
  usageBanner({
    neo4jUri: config.neo4j.uri ?? '',
    username: config.neo4j.username,
    // Only the throwaway demo server's password is printed; a real one is referred to, never shown.
    demoPassword: localNeo4j?.password,
    passwordFile: config.neo4j.passwordFile,
    proxyAddress: demoProxy?.advertisedAddress,
    metricsUrl,
  }),
);

interface BannerFacts {
  neo4jUri: string;
  username: string;
  demoPassword: string | undefined;
  passwordFile: string | undefined;
  proxyAddress: string | undefined;
  metricsUrl: string;
}

/**
 * What a new user needs to try what just started: where to point a worker, with which credentials,
 * one command that sends a query through the proxy (Node and the repo's neo4j-driver, so it works
 * from the repo root after `npm ci` with nothing else installed), and where to look.
 */
function usageBanner(facts: BannerFacts): string {
  const lines = [
    '',
    `  neo4j-pool-sidecar is running against ${facts.demoPassword ? 'the local demo Neo4j at ' : ''}${facts.neo4jUri}`,
    '',
  ];
  const password = facts.demoPassword
    ? `'${facts.demoPassword}'`
    : facts.passwordFile
      ? `require('fs').readFileSync('${facts.passwordFile}','utf8').trim()`
      : 'process.env.NEO4J_PASSWORD';
  if (facts.proxyAddress) {
    lines.push(
      `  Bolt proxy   bolt://${facts.proxyAddress}   (or neo4j://${facts.proxyAddress}): point workers' drivers here`,
      facts.demoPassword
        ? `  login        user ${facts.username}, password ${facts.demoPassword}   (the local demo server's)`
        : `  login        user ${facts.username} and your Neo4j password (${facts.passwordFile ? `in ${facts.passwordFile}` : 'NEO4J_PASSWORD'}): the proxy passes logins through`,
      '',
      '  Send a query through the proxy (from the repo root):',
      '',
      `    node -e "const neo4j=require('neo4j-driver');const d=neo4j.driver('bolt://${facts.proxyAddress}',neo4j.auth.basic('${facts.username}',${password}));d.executeQuery('RETURN 1 AS one').then(r=>console.log('RETURN 1 ->',r.records[0].get('one').toNumber(),'via',r.summary.server.address)).catch(e=>{console.error(e.message);process.exitCode=1}).finally(()=>d.close())"`,
      '',
    );
  } else {
    lines.push('  Bolt proxy   off (proxy.enabled is false)', '');
  }
  lines.push(
    `  metrics      ${facts.metricsUrl}/metrics`,
    `  status       ${facts.metricsUrl}/status`,
    `  readiness    ${facts.metricsUrl}/readyz`,
    '',
    `  Ctrl-C stops the sidecar${facts.demoPassword ? ', the demo load and the demo Neo4j' : ''}.`,
    '',
  );
  return lines.join('\n');
}

const DEMO_STOP_WAIT_MS = 2000;
const shutdown = async (signal: string) => {
  logger.info({ signal }, 'shutting down');
  // The demo load has nothing worth draining, so it gets a moment, not a drain. The demo Neo4j runs
  // in a process group of its own (scripts/tools/leash.ts), so Ctrl-C does not reach it: it is stopped
  // last, after the sidecar, which would otherwise log the outage of a server it was about to leave.
  await Promise.race([
    Promise.allSettled([stopLoad?.(), stopProxyLoad?.()]),
    new Promise((resolve) => setTimeout(resolve, DEMO_STOP_WAIT_MS).unref()),
  ]);
  await sidecar.stop();
  await localNeo4j?.destroy();
  process.exit(0);
};
// One Ctrl-C can arrive twice: from the terminal to the whole process group, and forwarded by npm.
// `once` would let the second one kill the script mid-shutdown, leaving the demo Neo4j's folder behind.
let shuttingDown = false;
const onSignal = (signal: string) => {
  if (shuttingDown) return;
  shuttingDown = true;
  void shutdown(signal);
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

/**
 * A worker-like load in this process, through an instrumented driver reporting to the sidecar's
 * recorder: short reads, a wider read, a write in an explicit transaction, and an occasional
 * failing query so the error metrics have something to show.
 */
function startDemoLoad(recorder: Recorder, uri: string, password: string): () => Promise<void> {
  const driver: Driver = neo4j.driver(uri, neo4j.auth.basic('neo4j', password), { maxConnectionPoolSize: 8 });
  instrumentDriver(driver, { recorder, poolName: 'demo-worker' });
  const deadline = Date.now() + Number(process.env.DEMO_LOAD_SECONDS ?? 3600) * 1000;
  let running = true;
  let iteration = 0;
  const worker = async () => {
    while (running && Date.now() < deadline) {
      iteration++;
      try {
        if (iteration % 50 === 0) await driver.executeQuery('RETURN this is not cypher');
        else if (iteration % 7 === 0) {
          await driver.executeQuery('UNWIND range(1, 1000) AS i RETURN i', {}, { routing: neo4j.routing.READ });
        } else if (iteration % 5 === 0) {
          const session = driver.session();
          try {
            await session.executeWrite(async (tx) => {
              await tx.run('MERGE (c:DemoCounter {id: 1}) SET c.hits = coalesce(c.hits, 0) + 1');
              await new Promise((resolve) => setTimeout(resolve, 30));
            });
          } finally {
            await session.close();
          }
        } else await driver.executeQuery('RETURN 1', {}, { routing: neo4j.routing.READ });
      } catch {
        // Failing queries are part of the demo; their metrics are the point.
      }
      await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 200));
    }
  };
  const workers = Array.from({ length: 3 }, worker);
  return async () => {
    running = false;
    await Promise.allSettled(workers);
    await driver.close();
  };
}

/**
 * Workers that know nothing of the sidecar, through its Bolt proxy: a long-lived pooled driver over
 * neo4j:// (its routing table points back at the proxy), and every few seconds a "task" that opens a
 * driver of its own for a query or two and closes it, the churn the proxy's connection lifetime and
 * queries-per-connection histograms are there to show. Neither is instrumented: what /metrics shows of
 * them, the proxy saw on the wire.
 */
function startProxyDemoLoad(proxyAddress: string, password: string): () => Promise<void> {
  const auth = neo4j.auth.basic('neo4j', password);
  const pooled: Driver = neo4j.driver(`neo4j://${proxyAddress}`, auth, { maxConnectionPoolSize: 4 });
  const deadline = Date.now() + Number(process.env.DEMO_LOAD_SECONDS ?? 3600) * 1000;
  let running = true;
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const pooledWorker = async () => {
    for (let iteration = 1; running && Date.now() < deadline; iteration++) {
      try {
        if (iteration % 40 === 0) await pooled.executeQuery('RETURN this is not cypher either');
        else await pooled.executeQuery('UNWIND range(1, 100) AS i RETURN sum(i)', {}, { routing: neo4j.routing.READ });
      } catch {
        // The failing query is there for the proxy's error counts.
      }
      await sleep(300 + Math.random() * 300);
    }
  };
  const perTaskWorker = async () => {
    while (running && Date.now() < deadline) {
      const task: Driver = neo4j.driver(`bolt://${proxyAddress}`, auth, { maxConnectionPoolSize: 1 });
      try {
        await task.executeQuery('MERGE (t:DemoTask {id: 1}) SET t.runs = coalesce(t.runs, 0) + 1');
        if (Math.random() < 0.5) await task.executeQuery('MATCH (t:DemoTask) RETURN t.runs');
      } catch {
        // A failed task is still a short-lived connection worth seeing.
      } finally {
        await task.close();
      }
      await sleep(3000 + Math.random() * 4000);
    }
  };
  const workers = [pooledWorker(), perTaskWorker()];
  return async () => {
    running = false;
    await Promise.allSettled(workers);
    await pooled.close();
  };
}
