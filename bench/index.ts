/**
 * `npm run bench`: every benchmark of docs/performance.md against a real local Neo4j, printed as
 * markdown tables and written to bench/results/ (latest.json, latest.md and a timestamped JSON).
 *
 *   npm run bench                                 # everything, about 19 minutes on 2 cores
 *   npm run bench -- --only proxy-js,scrape       # some sections
 *   npm run bench -- remote                       # the remote-Neo4j and pooling sections only
 *   npm run bench -- remote --delay-ms 10         # a longer link to the remote Neo4j (default 5 ms each way)
 *   npm run bench -- --rounds 3 --seconds 1       # shorter rounds (noisier)
 *   npm run bench -- --sidecar-from-source        # skip compiling the sidecar (its memory then includes tsx)
 *   npm run bench -- latency --ref main~3         # proxy latency, with the sidecar at main~3 as the baseline
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
import { benchNeo4jRestart } from './suites/neo4j-restart.ts';
import { benchPerTaskDriver } from './suites/per-task-driver.ts';
import { benchPoolUpstreams } from './suites/pool-upstreams.ts';
import { benchPooledThroughput } from './suites/pooled-throughput.ts';
import { benchProxyJs, benchProxyPython } from './suites/proxy.ts';
import { benchProxyLatency } from './suites/proxy-latency.ts';
import { benchQueryStats } from './suites/query-stats.ts';
import { benchRecorderCpu } from './suites/recorder-cpu.ts';
import { benchRemoteConnect } from './suites/remote-connect.ts';
import { benchScrape } from './suites/scrape.ts';
import { measureIdleSidecar, sidecarResourcesSection } from './suites/sidecar-resources.ts';
import { type BaselineBuild, buildBaseline } from './support/baseline.ts';
import type { BenchContext, BenchSettings } from './support/context.ts';
import { newContextMeter } from './support/context.ts';
import { LoadWorker } from './support/load-worker.ts';
import { describeMachine, findPids, machineLine } from './support/machine.ts';
import { renderSection, renderTable, type Section } from './support/report.ts';
import { buildSidecar, SidecarProcess } from './support/sidecar-process.ts';
import { DEFAULT_FLEET } from './support/synthetic-series.ts';
import { boltTlsConfig } from './support/tls.ts';
import { benchDriver, seedBenchRows } from './support/workloads.ts';

const SUITES: ReadonlyArray<{ id: string; run: (context: BenchContext) => Promise<Section> }> = [
  { id: 'recorder', run: benchRecorderCpu },
  { id: 'query-stats', run: benchQueryStats },
  { id: 'instrumented', run: benchInstrumentedDriver },
  { id: 'per-task-driver', run: benchPerTaskDriver },
  { id: 'proxy-js', run: benchProxyJs },
  { id: 'proxy-python', run: benchProxyPython },
  { id: 'scrape', run: benchScrape },
  { id: 'remote-connect', run: benchRemoteConnect },
  { id: 'pooled-throughput', run: benchPooledThroughput },
  { id: 'pool-upstreams', run: benchPoolUpstreams },
  { id: 'neo4j-restart', run: benchNeo4jRestart },
  { id: 'proxy-latency', run: benchProxyLatency },
];
const RESOURCES_ID = 'sidecar-resources';
const ALL_IDS = [...SUITES.map((suite) => suite.id), RESOURCES_ID];
/** Names for several sections at once, as `--only` entries or bare arguments (`npm run bench -- remote`). */
const GROUPS: Record<string, string[]> = {
  remote: ['remote-connect', 'pooled-throughput', 'pool-upstreams'],
  latency: ['proxy-latency'],
};
const VALUE_OPTIONS = ['only', 'rounds', 'seconds', 'delay-ms', 'ref'];

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

/** Bare arguments (not an option, not an option's value) name sections or groups, like `--only`. */
function bareArguments(): string[] {
  const args = process.argv.slice(2);
  return args.filter((arg, i) => !arg.startsWith('--') && !VALUE_OPTIONS.some((name) => args[i - 1] === `--${name}`));
}

const requested = [
  ...(option('only')
    ?.split(',')
    .map((id) => id.trim()) ?? []),
  ...bareArguments(),
];
const only = requested.length > 0 ? requested.flatMap((id) => GROUPS[id] ?? [id]) : undefined;
const unknown = only?.filter((id) => !ALL_IDS.includes(id)) ?? [];
if (unknown.length > 0) {
  console.error(`unknown section(s): ${unknown.join(', ')}; known: ${[...ALL_IDS, ...Object.keys(GROUPS)].join(', ')}`);
  process.exit(2);
}
const selected = (id: string) => !only || only.includes(id);
const settings: BenchSettings = {
  rounds: Math.round(positiveNumber(option('rounds'), 5, 'rounds')),
  roundSeconds: positiveNumber(option('seconds'), 2, 'seconds'),
  remoteDelayMs: positiveNumber(option('delay-ms'), 5, 'delay-ms'),
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
let python: LoadWorker | undefined;
let go: LoadWorker | undefined;
const extraSidecars: SidecarProcess[] = [];
const cleanUp = async () => {
  await python?.close().catch(() => {});
  await go?.close().catch(() => {});
  await Promise.all(extraSidecars.map((extra) => extra.stop().catch(() => {})));
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
      boltTls: false,
    };
  } else {
    log('starting Neo4j (the first run downloads it from Maven Central)...');
    // Bolt over TLS (optional, same port) only when the remote section runs, so the other sections
    // measure the server exactly as before.
    const tls = selected('remote-connect') ? await boltTlsConfig() : undefined;
    localNeo4j = await startLocalNeo4j({
      name: 'bench',
      heap: '1g',
      log,
      ...(tls ? { extraConfig: tls.extraConfig } : {}),
    });
    neo4j = {
      uri: localNeo4j.uri,
      credentials: { username: localNeo4j.username, password: localNeo4j.password },
      version: localNeo4j.version,
      boltTls: tls !== undefined,
    };
  }
  const seeder = benchDriver(neo4j.uri, neo4j.credentials);
  await seedBenchRows(seeder);
  await seeder.close();

  const fromSource = process.argv.includes('--sidecar-from-source');
  log(fromSource ? 'starting the sidecar from source (tsx)...' : 'compiling and starting the sidecar process...');
  const compiledEntry = fromSource ? undefined : await buildSidecar();
  const ref = option('ref');
  const baseline: BaselineBuild | undefined = ref === undefined ? undefined : await buildBaseline(ref, log);
  const sidecarOptions = {
    ...(compiledEntry ? { compiledEntry } : {}),
    username: neo4j.credentials.username,
    password: neo4j.credentials.password,
  };
  sidecar = await SidecarProcess.start({
    ...sidecarOptions,
    neo4jUri: neo4j.uri,
    syntheticFleet: `${DEFAULT_FLEET.pools}x${DEFAULT_FLEET.databases}`,
  });
  const startSidecar: BenchContext['startSidecar'] = async (neo4jUri, extraEnv, options = {}) => {
    const extra = await SidecarProcess.start({
      ...sidecarOptions,
      ...(options.build === 'baseline' && baseline ? { compiledEntry: baseline.compiledEntry } : {}),
      ...(options.nodeFlags ? { nodeFlags: options.nodeFlags } : {}),
      neo4jUri,
      extraEnv,
    });
    extraSidecars.push(extra);
    return extra;
  };
  log(`sidecar up: components ${sidecar.components.join(', ') || 'none'}; proxy ${sidecar.proxyUri ?? 'not built in'}`);

  let pythonMissing: string | undefined;
  if (['per-task-driver', 'proxy-python', 'remote-connect', 'pooled-throughput', 'neo4j-restart'].some(selected)) {
    try {
      python = await LoadWorker.python(log);
    } catch (error) {
      pythonMissing = `the Python driver could not be set up: ${(error as Error).message}`;
      log(pythonMissing);
    }
  }

  let goMissing: string | undefined;
  if (['remote-connect', 'pooled-throughput', 'proxy-latency'].some(selected)) {
    try {
      go = await LoadWorker.go(log);
    } catch (error) {
      goMissing = `the Go driver could not be set up: ${(error as Error).message}`;
      log(goMissing);
    }
  }

  const neo4jPids = localNeo4j ? findPids(`--home-dir=${localNeo4j.home}`) : [];
  const context: BenchContext = {
    settings,
    neo4j,
    sidecar,
    startSidecar,
    ...(baseline ? { baseline: { label: baseline.label } } : {}),
    python,
    ...(pythonMissing ? { pythonMissing } : {}),
    go,
    ...(goMissing ? { goMissing } : {}),
    newMeter: (extraPids = []) => newContextMeter([sidecar?.pid, python?.pid, go?.pid, ...neo4jPids, ...extraPids]),
    log,
  };
  const machine = describeMachine({
    neo4jVersion: neo4j.version,
    ...(python ? { python: python.runtimeVersion } : {}),
    ...(go ? { go: go.runtimeVersion } : {}),
  });

  const header = [
    '## neo4j-pool-sidecar benchmarks',
    `Run ${started.toISOString()} at commit ${gitDescription}${baseline ? `, baseline ${baseline.label}` : ''}, ${settings.rounds} measured rounds of ${settings.roundSeconds} s per variant.`,
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
