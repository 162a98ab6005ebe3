/**
 * Connect plus first query on the remote setting: Neo4j behind TLS (`bolt+ssc`, a self-signed
 * certificate) and a link that delays every chunk a few milliseconds each way (support/hop.ts), as a
 * Neo4j in another zone or a hosted one is. A driver per task pays that link's round trips for TCP,
 * TLS, the Bolt handshake, the login and the query; through the sidecar (on loopback beside the
 * worker) it pays what the proxy's pooling mode still sends across the link. Against it, a
 * worker-level driver's query on a warm pooled connection, direct. JavaScript, Python and Go drivers;
 * sequential samples, one task at a time, variants interleaved round by round. Each is measured with the
 * task's query sent both ways a worker sends it (support/workloads.ts QueryShape): `executeQuery`, a
 * managed transaction of two or three round trips, and `session.run`, an auto-commit query of one; the
 * login the sidecar verifies is one round trip either way, so the shape decides how much of a per-task
 * driver's cost pooling can take away.
 */
import type { Variant, VariantFigures } from '../support/compare.ts';
import { alternateAll, closedLoop, pairedMedian, sequentialSamples } from '../support/compare.ts';
import type { BenchContext } from '../support/context.ts';
import { HopProcess } from '../support/hop.ts';
import type { LoadDuringRun } from '../support/machine.ts';
import {
  AUTH_CACHE_SECONDS,
  missingModesNote,
  type ProxySetup,
  poolingEnv,
  poolingSupport,
  proxySetups,
} from '../support/pooling.ts';
import { format, type Section, type TargetCheck } from '../support/report.ts';
import type { SidecarProcess } from '../support/sidecar-process.ts';
import {
  benchDriver,
  jsDriverVersion,
  jsQuery,
  QUERY_SHAPES,
  type QueryShape,
  WORKLOADS,
} from '../support/workloads.ts';
import { jsFreshDriverSample, MAX_FRESH_DRIVERS_PER_ROUND } from './per-task-driver.ts';

export const PER_TASK_SPEEDUP_TARGET = 2.5;
export const CACHED_LOGIN_VS_WORKER_TARGET = 1.5;
const RETURN_ONE = WORKLOADS[0]!;
const PER_TASK_DIRECT = 'driver per task, direct';
const PER_WORKER_DIRECT = 'driver per worker, direct';

interface ProxiedSetup extends ProxySetup {
  sidecar: SidecarProcess;
  proxyUri: string;
}

interface ClientRows {
  client: string;
  figures: VariantFigures[];
  load: LoadDuringRun;
}

/** How a client makes its variants: a fresh driver per sample to a URI, or a warm named driver. */
interface ClientDriver {
  name: string;
  perTask(uri: string, shape: QueryShape): Variant['runRound'];
  perWorker(shape: QueryShape): Promise<Variant['runRound']>;
  close(): Promise<void>;
}

function perTaskName(setup: ProxySetup): string {
  return `driver per task, ${setup.label}`;
}

/** What a variant measures: its query shape, its row label, and the sidecar it goes through (null: direct). */
interface Measured {
  shape: QueryShape;
  label: string;
  setup: ProxiedSetup | null;
}

/** Variant names are unique per run: the query shape goes first, the table shows it in a column of its own. */
function shaped(shape: QueryShape, name: string): string {
  return `${shape}: ${name}`;
}

function clientDrivers(context: BenchContext, remoteUri: string): { drivers: ClientDriver[]; notes: string[] } {
  const { credentials } = context.neo4j;
  const seconds = context.settings.roundSeconds;
  const drivers: ClientDriver[] = [];
  const notes: string[] = [];
  const warmJs = benchDriver(remoteUri, credentials);
  drivers.push({
    name: 'JavaScript',
    perTask: (uri, shape) => () =>
      sequentialSamples(() => jsFreshDriverSample(uri, credentials, shape), seconds, MAX_FRESH_DRIVERS_PER_ROUND),
    perWorker: async (shape) => {
      await warmJs.verifyConnectivity();
      return () => closedLoop(jsQuery(warmJs, RETURN_ONE, shape), 1, seconds);
    },
    close: () => warmJs.close(),
  });
  for (const [name, worker, missing] of [
    ['Python', context.python, context.pythonMissing],
    ['Go', context.go, context.goMissing],
  ] as const) {
    if (!worker) {
      notes.push(`${name} not measured: ${missing ?? 'its load worker was not started'}`);
      continue;
    }
    drivers.push({
      name,
      perTask: (uri, shape) => () => worker.freshDriver(uri, credentials, seconds, MAX_FRESH_DRIVERS_PER_ROUND, shape),
      perWorker: async (shape) => {
        await worker.openDriver('remote-per-worker', remoteUri, credentials);
        return () => worker.load('remote-per-worker', RETURN_ONE, 1, seconds, shape);
      },
      close: async () => {},
    });
  }
  return { drivers, notes };
}

export async function benchRemoteConnect(context: BenchContext): Promise<Section> {
  const base = { id: 'remote-connect', title: 'Remote Neo4j (TLS, delayed link): connect plus first query' };
  const { settings, neo4j: server } = context;
  if (!server.boltTls) {
    const reason = 'Not measured: needs the benchmark to start its own Neo4j (with TLS on bolt), not BENCH_NEO4J_URI.';
    return { ...base, method: '', tables: [], notes: [reason], data: null };
  }
  const support = poolingSupport();
  const notes: string[] = [];
  const hop = await HopProcess.start({
    targetPort: Number(new URL(server.uri).port),
    delayMs: settings.remoteDelayMs,
  });
  const remoteUri = `bolt+ssc://127.0.0.1:${hop.port}`;
  const setups: ProxiedSetup[] = [];
  const { drivers, notes: driverNotes } = clientDrivers(context, remoteUri);
  notes.push(...driverNotes);
  const rows: ClientRows[] = [];
  /** Every variant by name, in the order they run, for every client alike. */
  const measured = new Map<string, Measured>();
  try {
    for (const setup of proxySetups(support, { withAuthCache: true })) {
      context.log(`  starting a sidecar in front of the remote Neo4j: ${setup.label}`);
      const sidecar = await context.startSidecar(remoteUri, poolingEnv(setup, support));
      if (!sidecar.proxyUri) {
        await sidecar.stop();
        notes.push(`${setup.label}: the sidecar's proxy did not accept connections; not measured.`);
        continue;
      }
      setups.push({ ...setup, sidecar, proxyUri: sidecar.proxyUri });
    }
    for (const shape of QUERY_SHAPES) {
      for (const entry of [
        { shape, label: PER_TASK_DIRECT, setup: null },
        ...setups.map((setup) => ({ shape, label: perTaskName(setup), setup })),
        { shape, label: PER_WORKER_DIRECT, setup: null },
      ]) {
        measured.set(shaped(shape, entry.label), entry);
      }
    }
    for (const driver of drivers) {
      context.log(`  remote connect + first query (${driver.name})`);
      const variants: Variant[] = [];
      for (const [name, { shape, label, setup }] of measured) {
        const runRound =
          label === PER_WORKER_DIRECT
            ? await driver.perWorker(shape)
            : driver.perTask(setup?.proxyUri ?? remoteUri, shape);
        variants.push({ name, runRound });
      }
      const { figures, load } = await alternateAll(variants, {
        rounds: settings.rounds,
        warmupRounds: settings.warmupRounds,
        meter: context.newMeter([hop.pid, ...setups.map((setup) => setup.sidecar.pid)]),
        onRound: (name, when, result) => {
          const variant = measured.get(name);
          if (!variant?.setup) return;
          const { shape, setup } = variant;
          if (when === 'start') setup.sidecar.startPhase(`${driver.name}, ${shape}`);
          else setup.sidecar.endPhase(result?.queries ?? 0);
        },
      });
      rows.push({ client: driver.name, figures, load });
    }
  } finally {
    await Promise.all(drivers.map((driver) => driver.close()));
    await Promise.all(setups.map((setup) => setup.sidecar.stop()));
    await hop.stop();
  }

  const cpuPerTaskUs = (setup: ProxiedSetup, client: string) =>
    setup.sidecar.phases().find((phase) => phase.phase === client)?.cpuMicrosPerQuery;
  const targets: TargetCheck[] = [];
  const pooled = support.modes.includes('session');
  const defaultSetup = setups.find(
    (setup) => setup.mode === (pooled ? 'session' : 'off') && setup.authCacheSeconds === 0,
  );
  const cachedSetup = setups.find((setup) => setup.authCacheSeconds > 0);
  const tableRows = rows.flatMap(({ client, figures }) =>
    QUERY_SHAPES.flatMap((shape) => {
      const find = (name: string) => figures.find((variant) => variant.name === shaped(shape, name))!;
      const direct = find(PER_TASK_DIRECT);
      const perWorker = find(PER_WORKER_DIRECT);
      const speedup = (variant: VariantFigures) => pairedMedian(variant, direct, (v, d) => d.p50Us / v.p50Us);
      const overWorker = (variant: VariantFigures) => pairedMedian(variant, perWorker, (v, w) => v.p50Us / w.p50Us);
      const shapeFigures = figures.filter((variant) => measured.get(variant.name)?.shape === shape);
      for (const variant of shapeFigures) {
        if (variant.errors > 0)
          notes.push(`${client}, ${variant.name}: ${variant.errors} failures (first: ${variant.firstError})`);
      }
      if (defaultSetup) {
        const measured = speedup(find(perTaskName(defaultSetup)));
        targets.push({
          target: `${client}, ${shape}: driver per task through the sidecar (${defaultSetup.label}${pooled ? '' : ': pooling not built in'}, every login verified) >= ${PER_TASK_SPEEDUP_TARGET}x faster than direct`,
          measured: `${measured.toFixed(2)}x`,
          met: measured >= PER_TASK_SPEEDUP_TARGET,
        });
      }
      if (cachedSetup) {
        const measured = overWorker(find(perTaskName(cachedSetup)));
        targets.push({
          target: `${client}, ${shape}: driver per task through the sidecar (${cachedSetup.label}) within ${CACHED_LOGIN_VS_WORKER_TARGET}x of a worker-level driver`,
          measured: `${measured.toFixed(2)}x`,
          met: measured <= CACHED_LOGIN_VS_WORKER_TARGET,
        });
      }
      return shapeFigures.map((variant) => {
        const { label, setup } = measured.get(variant.name)!;
        const cpu = setup ? cpuPerTaskUs(setup, `${client}, ${shape}`) : undefined;
        return [
          client,
          shape,
          label,
          format.millis(variant.p50Us / 1000),
          format.millis(variant.p99Us / 1000),
          variant === direct ? '1.00x' : `${speedup(variant).toFixed(2)}x`,
          variant === perWorker ? '1.00x' : `${overWorker(variant).toFixed(2)}x`,
          cpu === undefined ? '' : format.micros(cpu),
        ];
      });
    }),
  );
  const modesNote = missingModesNote(support);
  if (modesNote) notes.push(modesNote);
  if (support.modes.length > 0 && !support.authCache) {
    notes.push('The sidecar has no proxy.pooling.authCacheSeconds at this commit: the login-cache row is missing.');
  }
  const versions = [`neo4j-driver ${jsDriverVersion()}`];
  if (context.python) versions.push(`Python driver (${context.python.runtimeVersion})`);
  if (context.go) versions.push(`Go driver v5 (${context.go.runtimeVersion})`);
  return {
    ...base,
    method:
      `Neo4j serves Bolt over TLS with a self-signed certificate made at bench time (clients use \`bolt+ssc://\`) behind a ` +
      `hop that delays every chunk ${settings.remoteDelayMs} ms each way (a ${2 * settings.remoteDelayMs} ms round trip, ` +
      'the TCP connect included; a Node process of its own on loopback). Sidecars run on loopback beside the client ' +
      '(plain `bolt://` to their proxy), each with its own pooling setup, their upstream link the same delayed TLS one. ' +
      'Driver per task: a new driver, its first `RETURN 1`, timed until the result is in, closed outside the timing. ' +
      `Driver per worker: the same query on a warm pooled driver, direct. Task query: how the query is sent, ` +
      "`executeQuery` (the drivers' `executeQuery` / `execute_query` / `ExecuteQuery`: a managed transaction, BEGIN, RUN " +
      'and PULL, then COMMIT) or `session.run` (an auto-commit query in a session: RUN and PULL, one round trip). ' +
      `Up to ${MAX_FRESH_DRIVERS_PER_ROUND} sequential ` +
      `samples per ${settings.roundSeconds} s round, ${settings.rounds} rounds with the variants interleaved; p50 and p99 ` +
      'are medians of the rounds, ratios medians over the paired rounds. Sidecar CPU is its process time per task over ' +
      `its own rounds (the proxy's per-connection cost). ${versions.join('; ')}. Login cache: ${AUTH_CACHE_SECONDS} s.`,
    tables: [
      {
        headers: [
          'client',
          'task query',
          'variant',
          'p50 ms',
          'p99 ms',
          'faster than per task direct (p50)',
          'over per worker direct (p50)',
          'sidecar CPU µs per task',
        ],
        align: ['l', 'l', 'l', 'r', 'r', 'r', 'r', 'r'],
        rows: tableRows,
      },
    ],
    targets,
    load: rows.map((row) => row.load),
    notes,
    data: {
      delayMs: settings.remoteDelayMs,
      pooling: support,
      clients: rows.map(({ client, figures }) => ({ client, figures })),
      sidecarCpuPerTaskUs: setups.map((setup) => ({
        setup: setup.label,
        byClient: Object.fromEntries(
          rows.flatMap(({ client }) =>
            QUERY_SHAPES.map((shape) => [`${client}, ${shape}`, cpuPerTaskUs(setup, `${client}, ${shape}`) ?? null]),
          ),
        ),
      })),
    },
  };
}
