/**
 * What Neo4j sees when 200 clients query through the sidecar at once: its Bolt connections
 * (CALL dbms.listConnections(), sampled while the clients run), against the proxy in mode off, where
 * every client connection has an upstream of its own. In transaction mode with 10 upstreams the
 * server should see 10 from the proxy. Each listed connection is told apart by its client port: the
 * sidecar process's own sockets (read from /proc) are either its proxy's upstreams or, by their user
 * agent, the sidecar's own driver (probes); the rest are not the sidecar's (this counter, say). Also
 * the sidecar's resident memory per client connection, the memory side of the proxy's per-connection
 * cost.
 */
import neo4j, { type Driver } from 'neo4j-driver';
import { OWN_FAMILY } from '../../src/probe/census-analysis.ts';
import { closedLoop } from '../support/compare.ts';
import type { BenchContext } from '../support/context.ts';
import { type LoadDuringRun, processTcpPortsTo } from '../support/machine.ts';
import { type ProxySetup, poolingEnv, poolingSupport } from '../support/pooling.ts';
import { format, type Section, type TargetCheck } from '../support/report.ts';
import { BENCH_DATABASE, benchDriver, jsQuery, WORKLOADS } from '../support/workloads.ts';

const CLIENTS = 200;
const UPSTREAMS = 10;
const SAMPLE_EVERY_MS = 250;

interface UpstreamFigures {
  setup: string;
  clients: number;
  /** Bolt connections on the server with the sidecar idle (its own driver, this counter). */
  idleConnections: number;
  peakConnections: number;
  /** Most connections Neo4j listed at once from the sidecar's proxy (its upstreams). */
  peakProxyConnections: number;
  /** Most connections Neo4j listed at once from the sidecar's own driver (probes, readiness). */
  peakSidecarDriverConnections: number;
  queries: number;
  qps: number;
  errors: number;
  firstError?: string;
  residentMiBIdle: number;
  residentMiBPeak: number;
  load: LoadDuringRun;
}

interface ConnectionCount {
  total: number;
  /** The sidecar process's connections that are its proxy's, not its own driver's. */
  proxy: number;
  sidecarDriver: number;
}

async function boltConnections(
  counter: Driver,
  sidecarPid: number | undefined,
  neo4jPort: number,
): Promise<ConnectionCount> {
  const result = await counter.executeQuery(
    "CALL dbms.listConnections() YIELD connector, clientAddress, userAgent WHERE connector = 'bolt' RETURN clientAddress, userAgent",
    {},
    { database: BENCH_DATABASE },
  );
  const sidecarPorts = sidecarPid === undefined ? new Set<number>() : processTcpPortsTo(sidecarPid, neo4jPort);
  const count: ConnectionCount = { total: 0, proxy: 0, sidecarDriver: 0 };
  for (const record of result.records) {
    count.total++;
    const port = Number(String(record.get('clientAddress')).split(':').at(-1));
    if (!sidecarPorts.has(port)) continue;
    // The census tells the sidecar's own connections apart by the same product name in the user agent.
    if (String(record.get('userAgent') ?? '').split('/', 1)[0] === OWN_FAMILY) count.sidecarDriver++;
    else count.proxy++;
  }
  return count;
}

async function measureSetup(
  context: BenchContext,
  setup: ProxySetup,
  env: Record<string, string>,
  counter: Driver,
): Promise<UpstreamFigures | string> {
  const sidecar = await context.startSidecar(context.neo4j.uri, env);
  const clients: Driver[] = [];
  try {
    const proxyUri = sidecar.proxyUri;
    if (!proxyUri) return `${setup.label}: the sidecar's proxy did not accept connections; not measured.`;
    const neo4jPort = Number(new URL(context.neo4j.uri).port);
    const idleConnections = (await boltConnections(counter, sidecar.pid, neo4jPort)).total;
    const residentMiBIdle = sidecar.residentBytes() / 2 ** 20;
    for (let i = 0; i < CLIENTS; i++) {
      clients.push(
        neo4j.driver(
          proxyUri,
          neo4j.auth.basic(context.neo4j.credentials.username, context.neo4j.credentials.password),
          {
            maxConnectionPoolSize: 1,
            logging: { level: 'error', logger: () => {} },
          },
        ),
      );
    }
    let peakConnections = idleConnections;
    let peakProxyConnections = 0;
    let peakSidecarDriverConnections = 0;
    let residentPeak = sidecar.residentBytes();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const count = await boltConnections(counter, sidecar.pid, neo4jPort).catch(() => null);
        if (count !== null) {
          peakConnections = Math.max(peakConnections, count.total);
          peakProxyConnections = Math.max(peakProxyConnections, count.proxy);
          peakSidecarDriverConnections = Math.max(peakSidecarDriverConnections, count.sidecarDriver);
        }
        residentPeak = Math.max(residentPeak, sidecar.residentBytes());
        await new Promise((resolve) => setTimeout(resolve, SAMPLE_EVERY_MS));
      }
    })();
    const meter = context.newMeter([sidecar.pid]);
    meter.start();
    const seconds = 2 * context.settings.roundSeconds;
    // One closed loop per client driver: 200 client connections with a query in flight or about to be.
    const rounds = await Promise.all(clients.map((client) => closedLoop(jsQuery(client, WORKLOADS[0]!), 1, seconds)));
    const load = meter.stop();
    sampling = false;
    await sampler;
    const queries = rounds.reduce((sum, round) => sum + round.queries, 0);
    const errors = rounds.reduce((sum, round) => sum + round.errors, 0);
    const firstError = rounds.find((round) => round.firstError)?.firstError;
    return {
      setup: setup.label,
      clients: CLIENTS,
      idleConnections,
      peakConnections,
      peakProxyConnections,
      peakSidecarDriverConnections,
      queries,
      qps: queries / Math.max(...rounds.map((round) => round.seconds)),
      errors,
      ...(firstError ? { firstError } : {}),
      residentMiBIdle,
      residentMiBPeak: residentPeak / 2 ** 20,
      load,
    };
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await sidecar.stop();
  }
}

export async function benchPoolUpstreams(context: BenchContext): Promise<Section> {
  const base = {
    id: 'pool-upstreams',
    title: `Neo4j's connections for ${CLIENTS} concurrent clients through the sidecar`,
  };
  const support = poolingSupport();
  const notes: string[] = [];
  const runs: Array<{ setup: ProxySetup; env: Record<string, string> }> = [
    {
      setup: { label: 'proxy, off', mode: 'off', authCacheSeconds: 0 },
      env: poolingEnv({ mode: 'off', authCacheSeconds: 0 }, support),
    },
  ];
  if (!support.modes.includes('transaction')) {
    notes.push(
      "The sidecar's config schema at this commit does not accept proxy.pooling.mode transaction: only mode off is " +
        `measured; the transaction-mode row with ${UPSTREAMS} upstreams appears when the proxy has it.`,
    );
  } else if (!support.maxUpstreamsOption) {
    notes.push('The sidecar has pooling but no option capping upstreams in total that this section recognises.');
  } else {
    const setup: ProxySetup = {
      label: `proxy, transaction, ${UPSTREAMS} upstreams`,
      mode: 'transaction',
      authCacheSeconds: 0,
    };
    runs.push({ setup, env: poolingEnv(setup, support, UPSTREAMS) });
  }
  const counter = benchDriver(context.neo4j.uri, context.neo4j.credentials);
  const figures: UpstreamFigures[] = [];
  try {
    for (const { setup, env } of runs) {
      context.log(`  ${CLIENTS} clients through the sidecar: ${setup.label}`);
      const result = await measureSetup(context, setup, env, counter);
      if (typeof result === 'string') notes.push(result);
      else figures.push(result);
    }
  } finally {
    await counter.close();
  }
  const targets: TargetCheck[] = [];
  const pooled = figures.find((row) => row.setup.includes('transaction'));
  if (pooled) {
    targets.push({
      target: `transaction mode with ${UPSTREAMS} upstreams: Neo4j sees at most ${UPSTREAMS} connections from the proxy for ${CLIENTS} clients`,
      measured: `${pooled.peakProxyConnections} at peak (all connections: ${pooled.peakConnections - pooled.idleConnections} more than idle, the sidecar's own driver up to ${pooled.peakSidecarDriverConnections})`,
      met: pooled.peakProxyConnections <= UPSTREAMS,
    });
  }
  for (const row of figures) {
    if (row.errors > 0) notes.push(`${row.setup}: ${row.errors} failed queries (first: ${row.firstError})`);
  }
  return {
    ...base,
    method:
      `${CLIENTS} JavaScript drivers (one connection each) run \`RETURN 1\` in closed loops through a fresh sidecar for ` +
      `${2 * context.settings.roundSeconds} s; Neo4j's Bolt connections are counted with \`CALL dbms.listConnections()\` ` +
      `every ${SAMPLE_EVERY_MS} ms (idle: before the clients connect; the sidecar's own driver and the counter are in ` +
      "both); a listed connection is the proxy's when its client port is a socket of the sidecar process (read from " +
      "/proc) and its user agent is not the sidecar's own driver's. The sidecar's resident memory is sampled with them. Database: " +
      `${BENCH_DATABASE}; one run per setup.`,
    tables: [
      {
        headers: [
          'setup',
          'clients',
          'Neo4j connections idle',
          'Neo4j connections peak',
          'from the proxy, peak',
          "from the sidecar's driver, peak",
          'q/s',
          'sidecar RSS idle MiB',
          'sidecar RSS peak MiB',
          'RSS per client KiB',
        ],
        align: ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
        rows: figures.map((row) => [
          row.setup,
          String(row.clients),
          String(row.idleConnections),
          String(row.peakConnections),
          String(row.peakProxyConnections),
          String(row.peakSidecarDriverConnections),
          format.qps(row.qps),
          row.residentMiBIdle.toFixed(1),
          row.residentMiBPeak.toFixed(1),
          (((row.residentMiBPeak - row.residentMiBIdle) * 1024) / row.clients).toFixed(0),
        ]),
      },
    ],
    targets,
    load: figures.map((row) => row.load),
    notes,
    data: figures,
  };
}
