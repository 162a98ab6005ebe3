/**
 * `npm run bench`: every benchmark of docs/performance.md against a real local Neo4j, printed as
 * markdown tables and written to bench/results/ (latest.json, latest.md and a timestamped JSON).
 *
 *   npm run bench                                 # everything, about 8 minutes on 2 cores
 *   npm run bench -- --only proxy-js,scrape       # some sections
 *   npm run bench -- --rounds 3 --seconds 1       # shorter rounds (noisier)
 *   npm run bench -- --sidecar-from-source        # skip compiling the sidecar (its memory then includes tsx)
 *
 * Neo4j Community is started from Maven Central's jars like the tests do (first run downloads it);
 * BENCH_NEO4J_URI and BENCH_NEO4J_PASSWORD point the benchmark at another server instead. Comparisons
 * alternate their variants round by round in one run and report medians; every section reports the
 * machine's load beside its figures, since the machine may be shared.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type LocalNeo4j, repoRoot, startLocalNeo4j } from '../scripts/neo4j/local-neo4j.ts';
import { benchInstrumentedDriver } from './suites/instrumented.ts';
import { benchPerTaskDriver } from './suites/per-task-driver.ts';
import { benchProxyJs, benchProxyPython } from './suites/proxy.ts';
import { benchRecorderCpu } from './suites/recorder-cpu.ts';
import { benchScrape } from './suites/scrape.ts';
import { measureIdleSidecar, sidecarResourcesSection } from './suites/sidecar-resources.ts';
import type { BenchContext, BenchSettings } from './support/context.ts';
import { newContextMeter } from './support/context.ts';
import { describeMachine, findPids, machineLine } from './support/machine.ts';
import { PythonLoadWorker } from './support/python-worker.ts';
import { renderSection, renderTable, type Section } from './support/report.ts';
import { buildSidecar, SidecarProcess } from './support/sidecar-process.ts';
import { DEFAULT_FLEET } from './support/synthetic-series.ts';
import { benchDriver, seedBenchRows } from './support/workloads.ts';

const SUITES: ReadonlyArray<{ id: string; run: (context: BenchContext) => Promise<Section> }> = [
  { id: 'recorder', run: benchRecorderCpu },
  { id: 'instrumented', run: benchInstrumentedDriver },
  { id: 'per-task-driver', run: benchPerTaskDriver },
  { id: 'proxy-js', run: benchProxyJs },
  { id: 'proxy-python', run: benchProxyPython },
  { id: 'scrape', run: benchScrape },
];
const RESOURCES_ID = 'sidecar-resources';
const ALL_IDS = [...SUITES.map((suite) => suite.id), RESOURCES_ID];

function option(name: string): string | undefined {
  const args = process.argv.slice(2);
  const index = args.indexOf(`--${name}`);
  if (index >= 0) return args[index + 1];
  return args.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
}

function positiveNumber(text: string | undefined, fallback: number, name: string): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!(value > 0)) throw new Error(`--${name} must be a positive number, got "${text}"`);
  return value;
}

const only = option('only')
  ?.split(',')
  .map((id) => id.trim());
const unknown = only?.filter((id) => !ALL_IDS.includes(id)) ?? [];
if (unknown.length > 0) {
  console.error(`unknown section(s): ${unknown.join(', ')}; known: ${ALL_IDS.join(', ')}`);
  process.exit(2);
}
const selected = (id: string) => !only || only.includes(id);
const settings: BenchSettings = {
  rounds: Math.round(positiveNumber(option('rounds'), 5, 'rounds')),
  roundSeconds: positiveNumber(option('seconds'), 2, 'seconds'),
  warmupRounds: 1,
  concurrencies: [1, 16],
};

const log = (line: string) => console.error(line);
const started = new Date();
const gitDescription = (() => {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: repoRoot }).toString().trim();
    return dirty ? `${sha} (src/ has uncommitted changes)` : sha;
  } catch {
    return 'unknown';
  }
})();

let localNeo4j: LocalNeo4j | undefined;
let sidecar: SidecarProcess | undefined;
let python: PythonLoadWorker | undefined;
const cleanUp = async () => {
  await python?.close().catch(() => {});
  await sidecar?.stop().catch(() => {});
  await localNeo4j?.destroy().catch(() => {});
};
process.once('SIGINT', () => void cleanUp().then(() => process.exit(130)));
process.once('SIGTERM', () => void cleanUp().then(() => process.exit(143)));

try {
  let neo4j: BenchContext['neo4j'];
  if (process.env.BENCH_NEO4J_URI) {
    neo4j = {
      uri: process.env.BENCH_NEO4J_URI,
      credentials: {
        username: process.env.BENCH_NEO4J_USERNAME ?? 'neo4j',
        password: process.env.BENCH_NEO4J_PASSWORD ?? '',
      },
      version: 'external',
    };
  } else {
    log('starting Neo4j (the first run downloads it from Maven Central)...');
    localNeo4j = await startLocalNeo4j({ name: 'bench', heap: '1g', log });
    neo4j = {
      uri: localNeo4j.uri,
      credentials: { username: localNeo4j.username, password: localNeo4j.password },
      version: localNeo4j.version,
    };
  }
  const seeder = benchDriver(neo4j.uri, neo4j.credentials);
  await seedBenchRows(seeder);
  await seeder.close();

  const fromSource = process.argv.includes('--sidecar-from-source');
  log(fromSource ? 'starting the sidecar from source (tsx)...' : 'compiling and starting the sidecar process...');
  sidecar = await SidecarProcess.start({
    ...(fromSource ? {} : { compiledEntry: await buildSidecar() }),
    neo4jUri: neo4j.uri,
    username: neo4j.credentials.username,
    password: neo4j.credentials.password,
    syntheticFleet: `${DEFAULT_FLEET.pools}x${DEFAULT_FLEET.databases}`,
  });
  log(`sidecar up: components ${sidecar.components.join(', ') || 'none'}; proxy ${sidecar.proxyUri ?? 'not built in'}`);

  let pythonMissing: string | undefined;
  if (['per-task-driver', 'proxy-python'].some(selected)) {
    try {
      python = await PythonLoadWorker.start(log);
    } catch (error) {
      pythonMissing = `the Python driver could not be set up: ${(error as Error).message}`;
      log(pythonMissing);
    }
  }

  const neo4jPids = localNeo4j ? findPids(`--home-dir=${localNeo4j.home}`) : [];
  const context: BenchContext = {
    settings,
    neo4j,
    sidecar,
    python,
    ...(pythonMissing ? { pythonMissing } : {}),
    newMeter: () => newContextMeter([sidecar?.pid, python?.pid, ...neo4jPids]),
    log,
  };
  const machine = describeMachine({
    neo4jVersion: neo4j.version,
    ...(python ? { python: python.pythonVersion } : {}),
  });

  const header = [
    '## neo4j-pool-sidecar benchmarks',
    `Run ${started.toISOString()} at commit ${gitDescription}, ${settings.rounds} measured rounds of ${settings.roundSeconds} s per variant.`,
    `Machine: ${machineLine(machine)}.`,
  ].join('\n\n');
  console.log(`${header}\n`);

  const sections: Section[] = [];
  if (selected(RESOURCES_ID)) await measureIdleSidecar(context);
  for (const suite of SUITES) {
    if (!selected(suite.id)) continue;
    log(`running ${suite.id}...`);
    const section = await suite.run(context);
    sections.push(section);
    console.log(`${renderSection(section)}\n`);
  }
  if (selected(RESOURCES_ID)) {
    const section = sidecarResourcesSection(context);
    sections.push(section);
    console.log(`${renderSection(section)}\n`);
  }

  const targets = sections.flatMap((section) => section.targets ?? []);
  const summary = renderTable({
    headers: ['target', 'measured', 'met'],
    align: ['l', 'l', 'l'],
    rows: targets.map((check) => [check.target, check.measured, check.met ? 'yes' : '**no**']),
  });
  const notMeasured = sections.filter((section) => section.tables.length === 0).map((section) => section.title);
  const summaryText = `### Targets\n\n${summary}${
    notMeasured.length > 0 ? `\n\nNot measured in this run: ${notMeasured.join('; ')}.` : ''
  }`;
  console.log(`${summaryText}\n`);

  const resultsDir = join(repoRoot, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const json = JSON.stringify(
    { startedAt: started.toISOString(), commit: gitDescription, settings, machine, sections },
    (_key, value: unknown) => (typeof value === 'number' && !Number.isFinite(value) ? null : value),
    2,
  );
  const stamp = started
    .toISOString()
    .replaceAll(':', '-')
    .replace(/\.\d+Z$/, 'Z');
  writeFileSync(join(resultsDir, `bench-${stamp}.json`), json);
  writeFileSync(join(resultsDir, 'latest.json'), json);
  writeFileSync(
    join(resultsDir, 'latest.md'),
    `${[header, ...sections.map(renderSection), summaryText].join('\n\n')}\n`,
  );
  log(`results written to bench/results/latest.json, latest.md and bench-${stamp}.json`);
} finally {
  await cleanUp();
}
