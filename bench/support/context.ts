/** What every benchmark suite gets: the settings, the servers under test and the load meter. */
import type { Comparison } from './compare.ts';
import type { LoadWorker } from './load-worker.ts';
import { LoadMeter } from './machine.ts';
import { format, type Table } from './report.ts';
import type { SidecarProcess } from './sidecar-process.ts';
import type { Credentials, Workload } from './workloads.ts';

export interface BenchSettings {
  /** Measured rounds per variant. */
  rounds: number;
  /** Length of one throughput round, seconds. */
  roundSeconds: number;
  /** One-way delay of the remote setting's link to Neo4j, milliseconds. */
  remoteDelayMs: number;
  /** Unmeasured rounds per variant before measuring. */
  warmupRounds: number;
  concurrencies: readonly number[];
}

export interface BenchContext {
  settings: BenchSettings;
  /** `boltTls`: the same Bolt port also accepts TLS (`bolt+ssc://`), for the remote setting. */
  neo4j: { uri: string; credentials: Credentials; version: string; boltTls: boolean };
  /** The sidecar in its own process, in front of `neo4j`. */
  sidecar: SidecarProcess;
  /**
   * Starts another sidecar process like `sidecar` (same build), in front of `neo4jUri`; with
   * `build: 'baseline'`, the one compiled from `--ref` (see `baseline`).
   */
  startSidecar(
    neo4jUri: string,
    extraEnv: Record<string, string>,
    options?: { build?: 'current' | 'baseline'; nodeFlags?: readonly string[] },
  ): Promise<SidecarProcess>;
  /** The commit `--ref` named, compiled beside the current code, for before/after rows from one run. */
  baseline?: { label: string };
  /** Undefined when the Python driver could not be set up (the reason is in `pythonMissing`). */
  python: LoadWorker | undefined;
  pythonMissing?: string;
  /** The Go driver's load worker, when a section needs it and it could be built. */
  go: LoadWorker | undefined;
  goMissing?: string;
  /**
   * A meter that counts Neo4j, the sidecar and the load workers as the benchmark's own load, and
   * the processes a section started itself (`extraPids`: its hops and sidecars).
   */
  newMeter(extraPids?: readonly number[]): LoadMeter;
  log(line: string): void;
}

export function newContextMeter(ownPids: readonly (number | undefined)[]): LoadMeter {
  const meter = new LoadMeter();
  for (const pid of ownPids) meter.addOwnProcess(pid);
  return meter;
}

export interface ThroughputCell {
  workload: Workload;
  concurrency: number;
  comparison: Comparison;
}

/** The A-vs-B throughput table shared by the instrumentation and proxy comparisons. */
export function throughputTable(cells: readonly ThroughputCell[], a: string, b: string, caption?: string): Table {
  return {
    ...(caption ? { caption } : {}),
    headers: [
      'workload',
      'concurrency',
      `${a} q/s`,
      `${b} q/s`,
      `${b} / ${a}`,
      `${a} p50 µs`,
      `${b} p50 µs`,
      'added p50 µs',
      `${a} p99 µs`,
      `${b} p99 µs`,
    ],
    align: ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    rows: cells.map(({ workload, concurrency, comparison: c }) => [
      workload.name,
      String(concurrency),
      format.qps(c.a.qps),
      format.qps(c.b.qps),
      format.percent(c.throughputRatio),
      format.micros(c.a.p50Us),
      format.micros(c.b.p50Us),
      format.signedMicros(c.addedP50Us),
      format.micros(c.a.p99Us),
      format.micros(c.b.p99Us),
    ]),
  };
}

/** Errors seen in a comparison, as notes: a failing variant must never pass for a slow one. */
export function errorNotes(cells: readonly ThroughputCell[]): string[] {
  const notes: string[] = [];
  for (const { workload, concurrency, comparison } of cells) {
    for (const variant of [comparison.a, comparison.b]) {
      if (variant.errors > 0) {
        notes.push(
          `${variant.name}, ${workload.name} at concurrency ${concurrency}: ${variant.errors} failed queries (first: ${variant.firstError ?? 'unknown'})`,
        );
      }
    }
  }
  return notes;
}
