/**
 * Starts bench/sidecar-main.ts as a child process in front of a Neo4j, and measures it from outside:
 * resident memory and CPU time from /proc, per named phase of the benchmark.
 */
import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort, repoRoot } from '../../scripts/neo4j/local-neo4j.ts';
import { processCpuSeconds, processResidentBytes } from './machine.ts';

const mainScript = join(dirname(fileURLToPath(import.meta.url)), '..', 'sidecar-main.ts');
const buildDir = join(repoRoot, '.cache', 'bench-build');

/**
 * Compiles the sidecar (and bench/sidecar-main.ts) to plain JavaScript, as production runs it: under
 * tsx the process holds the TypeScript loader and source maps too, about 35 MiB more resident memory.
 * Type checking is `npm run typecheck`'s job, so this only emits. `sourceRoot` and `outDir` build
 * another tree (a baseline commit's, see baseline.ts); the output stays under this checkout, so its
 * imports resolve to this checkout's node_modules.
 */
export async function buildSidecar(options: { sourceRoot?: string; outDir?: string } = {}): Promise<string> {
  const sourceRoot = options.sourceRoot ?? repoRoot;
  const outDir = options.outDir ?? buildDir;
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  // biome-ignore format: flags and their values read best as pairs on a line
  const flags = [
    '--noCheck', '--outDir', outDir, '--rootDir', sourceRoot, '--module', 'NodeNext', '--moduleResolution', 'NodeNext',
    '--target', 'ES2022', '--lib', 'ES2023', '--types', 'node', '--rewriteRelativeImportExtensions',
    '--allowImportingTsExtensions', '--esModuleInterop', '--skipLibCheck', '--resolveJsonModule', '--verbatimModuleSyntax',
  ];
  const entry = join(sourceRoot, 'bench', 'sidecar-main.ts');
  await promisify(execFile)(process.execPath, [tsc, ...flags, entry], { cwd: sourceRoot });
  // src/contracts.ts reads ../package.json relative to itself.
  await copyFile(join(sourceRoot, 'package.json'), join(outDir, 'package.json'));
  return join(outDir, 'bench', 'sidecar-main.js');
}

/**
 * The Node flags the image starts the sidecar with (the Dockerfile's ENTRYPOINT, between `node` and
 * the script), so the compiled sidecar's memory and CPU are measured as it runs in production.
 */
export function productionNodeFlags(): string[] {
  const entrypoint = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
  if (!entrypoint) return [];
  const command = JSON.parse(entrypoint[1]!) as string[];
  const node = command.indexOf('node');
  return node < 0 ? [] : command.slice(node + 1).filter((argument) => argument.startsWith('--'));
}

export interface SidecarProcessOptions {
  neo4jUri: string;
  username: string;
  password: string;
  /** `10x5`: pools x databases of synthetic series (see synthetic-series.ts). */
  syntheticFleet?: string;
  extraEnv?: Record<string, string>;
  /** Compiled entry from buildSidecar(); without it the sidecar runs from source under tsx. */
  compiledEntry?: string;
  /** Node flags besides the production ones, e.g. `--cpu-prof` to profile the proxy under load. */
  nodeFlags?: readonly string[];
}

export interface PhaseResources {
  phase: string;
  seconds: number;
  /** CPU time used over the phase as a share of one core, 0..100 per core. */
  cpuPercentOfOneCore: number;
  cpuSeconds: number;
  residentMiBPeak: number;
  residentMiBEnd: number;
  /** Queries the phase carried through the sidecar, when it is a load phase. */
  queries?: number;
  /** Sidecar CPU per query carried, in microseconds. */
  cpuMicrosPerQuery?: number;
}

async function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolveAccepts) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolveAccepts(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export class SidecarProcess {
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    readonly httpPort: number,
    /** `bolt://127.0.0.1:<port>` when the Bolt proxy is built in and accepting connections. */
    readonly proxyUri: string | undefined,
    readonly components: readonly string[],
    private readonly stderr: { text: string },
    /** True when the sidecar runs from source under tsx rather than compiled. */
    readonly fromSource: boolean,
  ) {}

  private current: { phase: string; startedAt: number; cpuBefore: number } | undefined;
  private sampler: NodeJS.Timeout | undefined;
  private readonly phaseTotals = new Map<
    string,
    { seconds: number; cpuSeconds: number; peakBytes: number; endBytes: number; queries?: number }
  >();

  static async start(options: SidecarProcessOptions): Promise<SidecarProcess> {
    const proxyPort = await freePort();
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      NEO4J_URI: options.neo4jUri,
      NEO4J_USERNAME: options.username,
      NEO4J_PASSWORD: options.password,
      SIDECAR__HTTP__PORT: '0',
      SIDECAR__PROXY__ENABLED: 'true',
      SIDECAR__PROXY__PORT: String(proxyPort),
      SIDECAR__LOG__LEVEL: 'warn',
      ...(options.syntheticFleet ? { BENCH_SYNTHETIC_FLEET: options.syntheticFleet } : {}),
      ...options.extraEnv,
    };
    const extraFlags = options.nodeFlags ?? [];
    const args = options.compiledEntry
      ? [...productionNodeFlags(), ...extraFlags, options.compiledEntry]
      : [...extraFlags, '--import', 'tsx', mainScript];
    const child = spawn(process.execPath, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const stderr = { text: '' };
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr.text = (stderr.text + chunk).slice(-8000);
    });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = await Promise.race([
      lines.next(),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('sidecar start timed out')), 60_000)),
    ]).catch((error: unknown) => {
      child.kill('SIGKILL');
      throw new Error(`${String(error)}: ${stderr.text.trim()}`);
    });
    if (first.done) throw new Error(`the sidecar exited during start-up: ${stderr.text.trim()}`);
    const ready = JSON.parse(first.value) as { httpPort: number; components: string[] };
    const proxyUri = (await portAccepts(proxyPort)) ? `bolt://127.0.0.1:${proxyPort}` : undefined;
    return new SidecarProcess(child, ready.httpPort, proxyUri, ready.components, stderr, !options.compiledEntry);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get metricsUrl(): string {
    return `http://127.0.0.1:${this.httpPort}/metrics`;
  }

  residentBytes(): number {
    return processResidentBytes(this.pid) ?? Number.NaN;
  }

  cpuSeconds(): number {
    return processCpuSeconds(this.pid) ?? Number.NaN;
  }

  /**
   * Starts attributing the sidecar's CPU time to a named phase; phases of the same name add up, so
   * the proxied rounds of an alternating comparison can be summed apart from the direct ones.
   */
  startPhase(phase: string): void {
    this.current = { phase, startedAt: performance.now(), cpuBefore: this.cpuSeconds() };
    this.samplePeak(phase);
    this.sampler ??= setInterval(() => {
      if (this.current) this.samplePeak(this.current.phase);
    }, 100);
  }

  /** Ends the current phase; `queries` is how many queries it carried through the sidecar, if any. */
  endPhase(queries?: number): void {
    const current = this.current;
    if (!current) return;
    this.current = undefined;
    this.samplePeak(current.phase);
    const totals = this.phaseTotals.get(current.phase)!;
    totals.seconds += (performance.now() - current.startedAt) / 1000;
    totals.cpuSeconds += this.cpuSeconds() - current.cpuBefore;
    totals.endBytes = this.residentBytes();
    if (queries !== undefined) totals.queries = (totals.queries ?? 0) + queries;
  }

  private samplePeak(phase: string): void {
    const totals = this.phaseTotals.get(phase) ?? { seconds: 0, cpuSeconds: 0, peakBytes: 0, endBytes: 0 };
    totals.peakBytes = Math.max(totals.peakBytes, this.residentBytes());
    this.phaseTotals.set(phase, totals);
  }

  /** Every phase measured so far, in the order they first ran. */
  phases(): PhaseResources[] {
    return [...this.phaseTotals].map(([phase, totals]) => ({
      phase,
      seconds: totals.seconds,
      cpuSeconds: totals.cpuSeconds,
      cpuPercentOfOneCore: totals.seconds > 0 ? (100 * totals.cpuSeconds) / totals.seconds : 0,
      residentMiBPeak: totals.peakBytes / 2 ** 20,
      residentMiBEnd: totals.endBytes / 2 ** 20,
      ...(totals.queries !== undefined
        ? {
            queries: totals.queries,
            cpuMicrosPerQuery: totals.queries > 0 ? (totals.cpuSeconds * 1e6) / totals.queries : 0,
          }
        : {}),
    }));
  }

  async stop(): Promise<void> {
    if (this.sampler) clearInterval(this.sampler);
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolveExit) => this.child.once('exit', () => resolveExit()));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }

  /** The last lines the sidecar logged, for error reports. */
  recentLog(): string {
    return this.stderr.text;
  }
}
