/**
 * Every query of every dashboard panel (and every template variable) run against a real Prometheus
 * (Debian's package) that scrapes a running sidecar while instrumented drivers put real load on the
 * real Neo4j, directly and through the sidecar's Bolt proxy: successful and failing queries on two
 * databases, a one-connection pool that times out, a driver per task, a wrong password and a client
 * that is not Bolt at all. A second sidecar's proxy routes (neo4j:// upstream, transaction mode) for
 * the cluster routing row: Community has no cluster, so a scripted router (test/support/scripted-bolt.ts)
 * names the real Neo4j as writer and reader beside a reader that refuses connections. Each query must
 * return data, so a panel that would stay empty in Grafana (a misspelt metric, a label that does not
 * exist, a broken filter) fails here.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import neo4j, { type Driver } from 'neo4j-driver';
import { stringify as toYaml } from 'yaml';
import { freePort } from '../../scripts/neo4j/local-neo4j.ts';
import { ensurePrometheus } from '../../scripts/tools/prometheus.ts';
import { defaultComponents } from '../../src/components.ts';
import { configSchema } from '../../src/config/schema.ts';
import { instrumentDriver } from '../../src/instrument/index.ts';
import { createLogger } from '../../src/logger.ts';
import { isBoltProxyComponent, proxyComponent } from '../../src/proxy/index.ts';
import { type RunningSidecar, startSidecar } from '../../src/server/index.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { type ScriptedRouter, startScriptedRouter } from '../support/scripted-bolt.ts';
import { type GrafanaDashboard, loadDashboards, panelsOf } from './support/dashboards.ts';

const SCRAPE_INTERVAL = '1s';
/** What Grafana would make of $__rate_interval with a 1 s scrape interval, with room for scrape jitter. */
const RATE_INTERVAL = '10s';
/** $__range: the dashboard's time range; longer than the whole test, so it covers all of the load. */
const RANGE = '10m';
/** How long to wait for every query to have data before reporting the ones that have none. */
const DATA_DEADLINE_MS = 150_000;

interface PromResponse<T> {
  status: 'success' | 'error';
  data: T;
  error?: string;
}

interface MatrixResult {
  resultType: 'matrix' | 'vector';
  result: Array<{ metric: Record<string, string>; values?: Array<[number, string]>; value?: [number, string] }>;
}

/** Replaces the dashboard's variables with what Grafana sends for "All" and its global variables. */
function substitute(expr: string, dashboard: GrafanaDashboard): string {
  let out = expr.replaceAll('$__rate_interval', RATE_INTERVAL).replaceAll('$__range', RANGE);
  const variables = dashboard.templating.list
    .filter((variable) => variable.type === 'query')
    .sort((a, b) => b.name.length - a.name.length);
  for (const variable of variables) {
    const value = variable.allValue ?? '.*';
    out = out.replaceAll(`\${${variable.name}}`, value).replaceAll(`$${variable.name}`, value);
  }
  assert.doesNotMatch(out, /\$\w/, `unsubstituted variable in ${out}`);
  return out;
}

class LoadGenerator {
  private stopping = false;
  private readonly loops: Promise<void>[] = [];
  readonly drivers: Driver[] = [];
  counts = { ok: 0, failed: 0, timeouts: 0, authFailures: 0 };
  /** The first unexpected error of the timeout and per-task loops, for the test's diagnostics. */
  unexpected: string | undefined;

  noteError(error: Error): void {
    this.unexpected ??= error.message.slice(0, 300);
  }

  constructor(
    private readonly server: TestNeo4j,
    private readonly sidecar: RunningSidecar,
    /** bolt:// URI of the sidecar's Bolt proxy (or of Neo4j itself in a build without one). */
    private readonly proxyUri: string,
    /** neo4j:// URI of the routing sidecar's proxy; null in a build without a proxy. */
    private readonly routedUri: string | null,
  ) {}

  private driver(
    pool: string,
    config: Record<string, unknown> = {},
    { password = this.server.password, uri = this.server.uri } = {},
  ): Driver {
    const driver = neo4j.driver(uri, neo4j.auth.basic(this.server.username, password), {
      logging: { level: 'error', logger: () => {} },
      ...config,
    });
    instrumentDriver(driver, { recorder: this.sidecar.recorder, poolName: pool, source: 'driver' });
    this.drivers.push(driver);
    return driver;
  }

  start(maxMs: number): void {
    const until = Date.now() + maxMs;
    const running = () => !this.stopping && Date.now() < until;
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

    // Connections older than 3 s are closed on release and replaced: the pool's own churn.
    const worker = this.driver('worker', { maxConnectionPoolSize: 10, maxConnectionLifetime: 3000 });
    for (let lane = 0; lane < 4; lane++) {
      this.loops.push(
        (async () => {
          for (let i = 0; running(); i++) {
            try {
              if (i % 10 === 3) await worker.executeQuery('RETURN 1 +');
              else if (i % 10 === 5) await worker.executeQuery('SHOW DATABASES', {}, { database: 'system' });
              else if (i % 2 === 0) {
                await worker.executeQuery(
                  'MATCH (n:DashboardLoad) RETURN count(n) AS n',
                  {},
                  { routing: neo4j.routing.READ },
                );
              } else
                await worker.executeQuery('MERGE (n:DashboardLoad {lane: $lane}) SET n.at = timestamp()', { lane });
              this.counts.ok++;
            } catch {
              this.counts.failed++;
            }
            await pause(20);
          }
        })(),
      );
    }

    // One connection, a short acquisition timeout and a caller that keeps it busy: acquisition timeouts.
    const tiny = this.driver('tiny', { maxConnectionPoolSize: 1, connectionAcquisitionTimeout: 200 });
    this.loops.push(
      (async () => {
        while (running()) {
          try {
            const holder = tiny.session();
            try {
              const tx = await holder.beginTransaction();
              await tx.run('RETURN 1');
              await tiny.executeQuery('RETURN 2').catch((error: Error) => {
                if (/acquisition timed out/i.test(error.message)) this.counts.timeouts++;
                else this.noteError(error);
              });
              await tx.rollback();
            } finally {
              await holder.close();
            }
          } catch (error) {
            this.noteError(error as Error);
          }
          await pause(500);
        }
      })(),
    );

    // Steady load through the sidecar's Bolt proxy.
    const proxied = this.driver('proxied', { maxConnectionPoolSize: 4 }, { uri: this.proxyUri });
    this.loops.push(
      (async () => {
        for (let i = 0; running(); i++) {
          try {
            await proxied.executeQuery(i % 5 === 0 ? 'RETURN 1 +' : 'MATCH (n:DashboardLoad) RETURN count(n) AS n');
            this.counts.ok++;
          } catch {
            this.counts.failed++;
          }
          await pause(50);
        }
      })(),
    );

    // Not Bolt at all: the proxy refuses the handshake.
    this.loops.push(
      (async () => {
        while (running()) {
          await new Promise<void>((resolve) => {
            const socket = createConnection({ host: '127.0.0.1', port: Number(new URL(this.proxyUri).port) }, () => {
              socket.end('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
            });
            socket.on('error', () => resolve());
            socket.on('close', () => resolve());
            socket.resume();
          });
          await pause(2000);
        }
      })(),
    );

    // A driver per task through the proxy, the pattern the census and the proxy exist to find:
    // connections opened and closed all the time, one query each.
    this.loops.push(
      (async () => {
        while (running()) {
          const perTask = this.driver('per-task', { maxConnectionPoolSize: 1 }, { uri: this.proxyUri });
          try {
            await perTask.executeQuery('RETURN 1');
          } catch (error) {
            this.noteError(error as Error);
          } finally {
            await perTask.close();
            this.drivers.splice(this.drivers.indexOf(perTask), 1);
          }
          await pause(300);
        }
      })(),
    );

    // Maintenance: the proxy paused every few seconds while per-task drivers keep logging in, so their
    // logins are held; some resumed by hand (released), some outlasting holdTimeoutMs (timed out) and
    // left to the maximum pause (expired), for the hold and pause panels.
    const proxy = this.sidecar.components.find(isBoltProxyComponent)?.proxy;
    if (proxy !== undefined) {
      this.loops.push(
        (async () => {
          for (let cycle = 0; running(); cycle++) {
            await proxy.pause({ drainTimeoutMs: 100 });
            if (cycle % 2 === 0) {
              await pause(400);
              proxy.resume();
            }
            // Odd cycles: the pause outlasts holdTimeoutMs and ends at maxPauseMs by itself.
            await pause(3000);
          }
        })(),
      );
    }

    // An explicit transaction left open and silent past proxy.idleTransactionTimeoutMs: the proxy rolls
    // it back and closes the client, for the idle-transaction panel.
    const idle = this.driver('idle-transaction', { maxConnectionPoolSize: 1 }, { uri: this.proxyUri });
    this.loops.push(
      (async () => {
        while (running()) {
          const session = idle.session();
          try {
            const transaction = await session.beginTransaction();
            await transaction.run('RETURN 1');
            await pause(2500);
            await transaction.commit();
          } catch {
            // Expected: the proxy timed the transaction out.
          } finally {
            await session.close().catch(() => {});
          }
          await pause(2000);
        }
      })(),
    );

    // Reads and writes through the routing proxy: units by member and access, member upstreams, and
    // the dead reader tried once (a reader failover) before the real one serves the read.
    if (this.routedUri !== null) {
      const routed = this.driver('routed', { maxConnectionPoolSize: 4 }, { uri: this.routedUri });
      this.loops.push(
        (async () => {
          for (let i = 0; running(); i++) {
            try {
              if (i % 2 === 0) {
                await routed.executeQuery(
                  'MATCH (n:DashboardLoad) RETURN count(n) AS n',
                  {},
                  { routing: neo4j.routing.READ },
                );
              } else await routed.executeQuery('MERGE (n:DashboardLoad {lane: -1}) SET n.at = timestamp()');
              this.counts.ok++;
            } catch (error) {
              this.noteError(error as Error);
            }
            await pause(100);
          }
        })(),
      );
    }

    // A wrong password: connections that fail to open.
    // Through the proxy, so it sees the refused logins too.
    const badAuth = this.driver(
      'bad-auth',
      { maxConnectionPoolSize: 2 },
      { password: 'not-the-password', uri: this.proxyUri },
    );
    this.loops.push(
      (async () => {
        while (running()) {
          await badAuth.executeQuery('RETURN 1').catch(() => {
            this.counts.authFailures++;
          });
          await pause(1000);
        }
      })(),
    );
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.allSettled(this.loops);
    await Promise.allSettled(this.drivers.map((driver) => driver.close()));
  }
}

describe('dashboard queries against a real Prometheus scraping a loaded sidecar', { timeout: 15 * 60_000 }, () => {
  let server: TestNeo4j;
  let sidecar: RunningSidecar;
  let routingSidecar: RunningSidecar | undefined;
  let router: ScriptedRouter | undefined;
  let load: LoadGenerator;
  let prometheus: ChildProcess | undefined;
  let prometheusUrl: string;
  let workDir: string;
  let prometheusLog = '';

  async function api<T>(path: string, params: Record<string, string>): Promise<PromResponse<T>> {
    const response = await fetch(`${prometheusUrl}${path}?${new URLSearchParams(params)}`);
    return (await response.json()) as PromResponse<T>;
  }

  /** Non-empty with at least one finite sample over the last 30 s. */
  async function hasData(expr: string): Promise<{ ok: boolean; detail: string }> {
    const end = Date.now() / 1000;
    const reply = await api<MatrixResult>('/api/v1/query_range', {
      query: expr,
      start: String(end - 30),
      end: String(end),
      step: '1',
    });
    if (reply.status !== 'success') return { ok: false, detail: `error: ${reply.error}` };
    const finite = reply.data.result.some((series) =>
      (series.values ?? []).some(([, value]) => Number.isFinite(Number(value))),
    );
    return {
      ok: finite,
      detail: `${reply.data.result.length} series, ${finite ? 'finite values' : 'no finite value'}`,
    };
  }

  before(async () => {
    const tools = await ensurePrometheus((line) => console.log(line));
    server = await sharedNeo4j();
    workDir = await mkdtemp(join(tmpdir(), 'dashboards-prometheus-'));

    const proxyPort = await freePort();
    const config = configSchema.parse({
      neo4j: { uri: server.uri, username: server.username, password: server.password },
      http: { host: '127.0.0.1', port: 0 },
      // Short holds and pauses, so the maintenance loop fills the hold and pause panels within the test.
      proxy: {
        enabled: true,
        host: '127.0.0.1',
        port: proxyPort,
        idleTransactionTimeoutMs: 1000,
        pooling: { holdTimeoutMs: 700, maxPauseMs: 1500 },
      },
      log: { level: 'error', pretty: 'never' },
      // Probes and the census every 2 s, so their panels fill within the test.
      probes: { schedule: '*/2 * * * * *', timeoutMs: 800, jitterMs: 0, freshConnect: { everyRuns: 1 } },
      alerts: { evaluationIntervalSeconds: 1 },
      // The top-queries panels join the normalised text in when it is exported; checked below.
      queryStats: { exportText: true },
    });
    sidecar = await startSidecar(config, {
      logger: createLogger({ level: 'error', pretty: 'never' }),
      components: defaultComponents,
    });
    // Through the Bolt proxy when this build has one (its panels need its traffic), else straight to Neo4j.
    const proxyRunning = sidecar.components.some((component) => component.name === 'proxy');

    // The routing sidecar: its proxy alone, seeded by a scripted router whose 2 s TTL keeps tables
    // expiring, naming the real Neo4j as writer and reader and a port nothing listens on as a reader.
    let routedUri: string | null = null;
    if (proxyRunning) {
      const neo4jUrl = new URL(server.uri);
      const neo4jAddress = `${neo4jUrl.hostname}:${neo4jUrl.port || '7687'}`;
      const deadReader = `127.0.0.1:${await freePort()}`;
      const members = { ttlSeconds: 2, writers: [neo4jAddress], readers: [neo4jAddress, deadReader] };
      router = await startScriptedRouter({
        username: server.username,
        password: server.password,
        table: { ...members, routers: [] },
      });
      // The router names itself once its port is known.
      router.setTable({ ...members, routers: [router.address] });
      const routingPort = await freePort();
      routingSidecar = await startSidecar(
        configSchema.parse({
          neo4j: { uri: router.uri, username: server.username, password: server.password },
          http: { host: '127.0.0.1', port: 0 },
          proxy: { enabled: true, host: '127.0.0.1', port: routingPort, pooling: { mode: 'transaction' } },
          log: { level: 'error', pretty: 'never' },
        }),
        { logger: createLogger({ level: 'error', pretty: 'never' }), components: [proxyComponent] },
      );
      routedUri = `neo4j://127.0.0.1:${routingPort}`;
    }
    load = new LoadGenerator(server, sidecar, proxyRunning ? `bolt://127.0.0.1:${proxyPort}` : server.uri, routedUri);
    load.start(10 * 60_000);

    const port = await freePort();
    prometheusUrl = `http://127.0.0.1:${port}`;
    const configFile = join(workDir, 'prometheus.yml');
    await writeFile(
      configFile,
      toYaml({
        global: { scrape_interval: SCRAPE_INTERVAL, evaluation_interval: SCRAPE_INTERVAL },
        scrape_configs: [
          {
            job_name: 'neo4j-pool-sidecar',
            static_configs: [
              {
                targets: [sidecar, routingSidecar].flatMap((running) =>
                  running === undefined ? [] : [`127.0.0.1:${running.httpAddress.port}`],
                ),
              },
            ],
          },
        ],
      }),
    );
    prometheus = spawn(
      tools.prometheus,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(workDir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=1h',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    prometheus.stderr?.on('data', (data: Buffer) => {
      prometheusLog = (prometheusLog + data.toString()).slice(-4000);
    });
    const deadline = Date.now() + 60_000;
    for (;;) {
      const ready = await fetch(`${prometheusUrl}/-/ready`).catch(() => undefined);
      if (ready?.ok) break;
      if (Date.now() > deadline || prometheus.exitCode !== null) {
        throw new Error(`Prometheus did not become ready: ${prometheusLog}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  });

  after(async () => {
    prometheus?.kill('SIGTERM');
    await load?.stop();
    await sidecar?.stop();
    await routingSidecar?.stop();
    await router?.close();
    await releaseSharedNeo4j();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('scrapes the sidecar', async () => {
    const deadline = Date.now() + 60_000;
    let up = '';
    while (Date.now() < deadline) {
      const reply = await api<MatrixResult>('/api/v1/query', { query: 'up{job="neo4j-pool-sidecar"}' });
      up = reply.data.result[0]?.value?.[1] ?? '';
      if (up === '1') break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    assert.equal(up, '1', `the scrape target is not up: ${prometheusLog}`);
  });

  it('shows the normalised query text in the top-queries panels when queryStats.exportText exports it', async () => {
    const dashboards = await loadDashboards();
    const [, queries] = [...dashboards].find(([file]) => file.includes('queries'))!;
    const panel = panelsOf(queries).find((candidate) => candidate.title.startsWith('Top 10 queries by total time'));
    assert.ok(panel?.targets?.[0], 'the top-queries-by-total-time panel exists');
    const expr = substitute(panel.targets[0].expr, queries);
    const deadline = Date.now() + DATA_DEADLINE_MS;
    let labels: Array<Record<string, string>> = [];
    while (Date.now() < deadline) {
      const reply = await api<MatrixResult>('/api/v1/query', { query: expr });
      labels = reply.status === 'success' ? reply.data.result.map((series) => series.metric) : [];
      if (labels.some((metric) => metric.query !== undefined)) break;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    const withText = labels.filter((metric) => metric.query !== undefined);
    assert.ok(withText.length > 0, `no row carried the query text: ${JSON.stringify(labels)}`);
    for (const metric of withText) {
      assert.match(metric.query_id ?? '', /^[0-9a-f]{16}$/);
      assert.ok(!metric.query!.includes("'"), `text without literals: ${metric.query}`);
    }
  });

  it('returns data for every panel query and every template variable', async (t) => {
    const dashboards = await loadDashboards();
    const queries: Array<{ where: string; expr: string }> = [];
    const variables: Array<{ where: string; selector: string; label: string }> = [];
    for (const [file, dashboard] of dashboards) {
      for (const panel of panelsOf(dashboard)) {
        for (const target of panel.targets ?? []) {
          queries.push({
            where: `${file} / ${panel.title} / ${target.refId}`,
            expr: substitute(target.expr, dashboard),
          });
        }
      }
      for (const variable of dashboard.templating.list) {
        if (variable.type !== 'query') continue;
        const text = typeof variable.query === 'string' ? variable.query : (variable.query?.query ?? '');
        const match = /^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(text);
        assert.ok(match, `${file}: variable ${variable.name} uses label_values(selector, label): ${text}`);
        variables.push({
          where: `${file} / $${variable.name}`,
          selector: substitute(match[1]!, dashboard),
          label: match[2]!,
        });
      }
    }
    assert.ok(queries.length >= 40, `expected the dashboards' ${queries.length} queries to be many`);

    // Poll until everything has data: the census and the counters need a few probe runs and scrapes.
    const deadline = Date.now() + DATA_DEADLINE_MS;
    let missing: string[] = [];
    for (;;) {
      missing = [];
      for (const query of queries) {
        const result = await hasData(query.expr);
        if (!result.ok) missing.push(`${query.where}: ${result.detail}\n    ${query.expr}`);
      }
      for (const variable of variables) {
        const end = Date.now() / 1000;
        const reply = await api<Array<Record<string, string>>>('/api/v1/series', {
          'match[]': variable.selector,
          start: String(end - 60),
          end: String(end),
        });
        const values = new Set(reply.status === 'success' ? reply.data.map((series) => series[variable.label]) : []);
        values.delete(undefined as unknown as string);
        if (values.size === 0)
          missing.push(`${variable.where}: no values for ${variable.label} in ${variable.selector}`);
      }
      if (missing.length === 0 || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
    t.diagnostic(
      `${queries.length} panel queries, ${variables.length} variables; load: ${JSON.stringify(load.counts)}`,
    );
    assert.deepEqual(missing, [], `queries without data:\n${missing.join('\n')}`);
  });
});
