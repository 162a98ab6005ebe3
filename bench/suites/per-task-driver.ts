/**
 * The per-task-driver table from the field: what a job pays for its first query when it creates a
 * driver per task (TCP connect, Bolt handshake, authentication, then the query) against one driver
 * per worker process (a pooled connection, just the query). Direct and through the proxy, with the
 * JavaScript and the Python driver. Samples are sequential, like one worker running one task at a time.
 */
import neo4j from 'neo4j-driver';
import { alternateAll, closedLoop, sequentialSamples, type Variant, type VariantFigures } from '../support/compare.ts';
import type { BenchContext } from '../support/context.ts';
import type { LoadDuringRun } from '../support/machine.ts';
import { format, type Section, type Table } from '../support/report.ts';
import {
  benchDriver,
  type Credentials,
  jsDriverVersion,
  jsQuery,
  jsQueryRows,
  type QueryShape,
  WORKLOADS,
} from '../support/workloads.ts';

export const MAX_FRESH_DRIVERS_PER_ROUND = 400;
const RETURN_ONE = WORKLOADS[0]!;

type Pattern = 'driver per task' | 'driver per worker';
type Path = 'direct' | 'proxy';

interface PatternFigures {
  client: string;
  pattern: Pattern;
  path: Path;
  figures: VariantFigures;
}

/** The per-task pattern once: a new driver, its first RETURN 1 in `shape` (timed), then close (not timed). */
export async function jsFreshDriverSample(
  uri: string,
  credentials: Credentials,
  shape: QueryShape = 'executeQuery',
): Promise<number> {
  const started = performance.now();
  const driver = neo4j.driver(uri, neo4j.auth.basic(credentials.username, credentials.password), {
    maxConnectionPoolSize: 1,
    logging: { level: 'error', logger: () => {} },
  });
  try {
    const { rows, rowsInAtMs } = await jsQueryRows(driver, 'RETURN 1 AS value', shape);
    if (rows !== 1) throw new Error(`RETURN 1: expected 1 row, got ${rows}`);
    return rowsInAtMs - started;
  } finally {
    await driver.close();
  }
}

function variantName(pattern: Pattern, path: Path): string {
  return `${pattern}, ${path}`;
}

async function measureClient(
  context: BenchContext,
  client: string,
  makeVariant: (pattern: Pattern, path: Path, uri: string) => Variant,
): Promise<{ rows: PatternFigures[]; load: LoadDuringRun }> {
  const paths: Array<[Path, string]> = [['direct', context.neo4j.uri]];
  if (context.sidecar.proxyUri) paths.push(['proxy', context.sidecar.proxyUri]);
  const variants: Array<{ pattern: Pattern; path: Path; variant: Variant }> = [];
  for (const pattern of ['driver per task', 'driver per worker'] as const) {
    for (const [path, uri] of paths) variants.push({ pattern, path, variant: makeVariant(pattern, path, uri) });
  }
  context.log(`  per-task vs per-worker driver (${client})`);
  const { figures, load } = await alternateAll(
    variants.map((entry) => entry.variant),
    {
      rounds: context.settings.rounds,
      warmupRounds: context.settings.warmupRounds,
      meter: context.newMeter(),
      onRound: (name, when, result) => {
        if (!name.endsWith(', proxy')) return;
        if (when === 'start') context.sidecar.startPhase(`${client} ${name.replace(', proxy', '')} through the proxy`);
        else context.sidecar.endPhase(result?.queries ?? 0);
      },
    },
  );
  return {
    rows: variants.map((entry, i) => ({ client, pattern: entry.pattern, path: entry.path, figures: figures[i]! })),
    load,
  };
}

export async function benchPerTaskDriver(context: BenchContext): Promise<Section> {
  const { settings, neo4j: server } = context;
  const sampleSeconds = settings.roundSeconds;
  const results: PatternFigures[] = [];
  const loads: LoadDuringRun[] = [];
  const notes: string[] = [];

  const workerDrivers = new Map<string, ReturnType<typeof benchDriver>>();
  try {
    const js = await measureClient(context, 'JavaScript', (pattern, path, uri) => {
      const name = variantName(pattern, path);
      if (pattern === 'driver per task') {
        return {
          name,
          runRound: () =>
            sequentialSamples(
              () => jsFreshDriverSample(uri, server.credentials),
              sampleSeconds,
              MAX_FRESH_DRIVERS_PER_ROUND,
            ),
        };
      }
      const driver = benchDriver(uri, server.credentials);
      workerDrivers.set(name, driver);
      return { name, runRound: () => closedLoop(jsQuery(driver, RETURN_ONE), 1, sampleSeconds) };
    });
    results.push(...js.rows);
    loads.push(js.load);
  } finally {
    await Promise.all([...workerDrivers.values()].map((driver) => driver.close()));
  }

  const python = context.python;
  if (python) {
    await python.openDriver('per-worker-direct', server.uri, server.credentials);
    if (context.sidecar.proxyUri) {
      await python.openDriver('per-worker-proxy', context.sidecar.proxyUri, server.credentials);
    }
    const py = await measureClient(context, 'Python', (pattern, path, uri) => {
      const name = variantName(pattern, path);
      if (pattern === 'driver per task') {
        return {
          name,
          runRound: () => python.freshDriver(uri, server.credentials, sampleSeconds, MAX_FRESH_DRIVERS_PER_ROUND),
        };
      }
      return { name, runRound: () => python.load(`per-worker-${path}`, RETURN_ONE, 1, sampleSeconds) };
    });
    results.push(...py.rows);
    loads.push(py.load);
  } else {
    notes.push(`Python not measured: ${context.pythonMissing}`);
  }
  if (!context.sidecar.proxyUri) {
    notes.push("The proxy columns are empty: the sidecar's Bolt proxy did not accept connections (see its log).");
  }
  for (const row of results) {
    if (row.figures.errors > 0) {
      notes.push(
        `${row.client}, ${row.pattern}, ${row.path}: ${row.figures.errors} failures (first: ${row.figures.firstError})`,
      );
    }
  }

  const find = (client: string, pattern: Pattern, path: Path) =>
    results.find((row) => row.client === client && row.pattern === pattern && row.path === path)?.figures;
  const clients = [...new Set(results.map((row) => row.client))];
  const table: Table = {
    headers: [
      'client',
      'pattern',
      'direct p50 ms',
      'direct p99 ms',
      'proxy p50 ms',
      'proxy p99 ms',
      'per-task / per-worker p50 (direct)',
    ],
    align: ['l', 'l', 'r', 'r', 'r', 'r', 'r'],
    rows: clients.flatMap((client) =>
      (['driver per task', 'driver per worker'] as const).map((pattern) => {
        const direct = find(client, pattern, 'direct');
        const proxy = find(client, pattern, 'proxy');
        const perWorker = find(client, 'driver per worker', 'direct');
        const slowdown =
          pattern === 'driver per task' && direct && perWorker ? `${(direct.p50Us / perWorker.p50Us).toFixed(0)}x` : '';
        return [
          client,
          pattern,
          format.millis((direct?.p50Us ?? Number.NaN) / 1000),
          format.millis((direct?.p99Us ?? Number.NaN) / 1000),
          proxy ? format.millis(proxy.p50Us / 1000) : '–',
          proxy ? format.millis(proxy.p99Us / 1000) : '–',
          slowdown,
        ];
      }),
    ),
  };
  return {
    id: 'per-task-driver',
    title: 'Driver per task vs one driver per worker: connect plus first query',
    method:
      'Driver per task: a new driver, its first `RETURN 1` (TCP connect, Bolt handshake, authentication, query), timed ' +
      'until the result is in, then closed outside the timing. Driver per worker: the same query on a warm pooled driver. ' +
      `Sequential samples (one task at a time), up to ${MAX_FRESH_DRIVERS_PER_ROUND} per ${sampleSeconds} s round, ` +
      `${settings.rounds} rounds with the variants interleaved, medians of the per-round p50 and p99. ` +
      `neo4j-driver ${jsDriverVersion()}; Python driver as in the proxy table. Neo4j is on loopback: across a network ` +
      'every extra round trip of the per-task pattern costs a full network round trip more.',
    tables: [table],
    load: loads,
    notes,
    data: results,
  };
}
