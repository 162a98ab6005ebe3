/**
 * A/B comparisons run as alternating rounds in one process, so that machine noise (other tenants,
 * JIT warm-up, Neo4j's caches, CPU frequency) falls on both variants alike, and reported as medians
 * over rounds. The order alternates A B, B A, A B, ... so that a steady drift favours neither side.
 */
import { type LoadDuringRun, LoadMeter } from './machine.ts';
import { median, summarizeLatencies } from './stats.ts';

/** One round of a closed-loop load: how many queries completed and how long each took. */
export interface RoundResult {
  queries: number;
  errors: number;
  seconds: number;
  /** Per-query latencies in milliseconds. */
  latenciesMs: number[];
  /** First error message seen, to tell a broken variant from a slow one. */
  firstError?: string;
}

export interface RoundFigures {
  qps: number;
  p50Us: number;
  p99Us: number;
  queries: number;
  errors: number;
}

export interface VariantFigures extends RoundFigures {
  name: string;
  rounds: RoundFigures[];
  firstError?: string;
}

export interface Comparison {
  a: VariantFigures;
  b: VariantFigures;
  /** Median over paired rounds of b.qps / a.qps. */
  throughputRatio: number;
  /** Median over paired rounds of b.p50Us - a.p50Us. */
  addedP50Us: number;
  /** Median over paired rounds of b.p99Us - a.p99Us. */
  addedP99Us: number;
  load: LoadDuringRun;
}

export interface Variant {
  name: string;
  runRound(): Promise<RoundResult>;
}

export function roundFigures(result: RoundResult): RoundFigures {
  const latency = summarizeLatencies(result.latenciesMs);
  return {
    qps: result.seconds > 0 ? result.queries / result.seconds : 0,
    p50Us: latency.p50Us,
    p99Us: latency.p99Us,
    queries: result.queries,
    errors: result.errors,
  };
}

function variantFigures(name: string, rounds: RoundFigures[], firstError: string | undefined): VariantFigures {
  return {
    name,
    rounds,
    qps: median(rounds.map((round) => round.qps)),
    p50Us: median(rounds.map((round) => round.p50Us)),
    p99Us: median(rounds.map((round) => round.p99Us)),
    queries: rounds.reduce((sum, round) => sum + round.queries, 0),
    errors: rounds.reduce((sum, round) => sum + round.errors, 0),
    ...(firstError ? { firstError } : {}),
  };
}

export interface AlternateOptions {
  rounds: number;
  /** Unmeasured rounds of each variant first (connections opened, JIT warm). */
  warmupRounds?: number;
  meter?: LoadMeter;
  /** Called around each measured round of a variant, e.g. to attribute sidecar CPU to proxied rounds. */
  onRound?: (variant: string, phase: 'start' | 'end', result?: RoundResult) => void;
}

/**
 * Runs the variants' rounds interleaved: with two, A B then B A; with more, each round starts one
 * variant further on, so every variant runs early and late equally often.
 */
export async function alternateAll(
  variants: readonly Variant[],
  options: AlternateOptions,
): Promise<{ figures: VariantFigures[]; load: LoadDuringRun }> {
  for (let i = 0; i < (options.warmupRounds ?? 1); i++) {
    for (const variant of variants) await variant.runRound();
  }
  const meter = options.meter ?? new LoadMeter();
  meter.start();
  const rounds = variants.map(() => [] as RoundFigures[]);
  const firstErrors: Array<string | undefined> = variants.map(() => undefined);
  for (let round = 0; round < options.rounds; round++) {
    const order =
      variants.length === 2
        ? round % 2 === 0
          ? [0, 1]
          : [1, 0]
        : variants.map((_, i) => (i + round) % variants.length);
    for (const index of order) {
      const variant = variants[index]!;
      options.onRound?.(variant.name, 'start');
      const result = await variant.runRound();
      options.onRound?.(variant.name, 'end', result);
      rounds[index]!.push(roundFigures(result));
      firstErrors[index] ??= result.firstError;
    }
  }
  const load = meter.stop();
  return { figures: variants.map((variant, i) => variantFigures(variant.name, rounds[i]!, firstErrors[i])), load };
}

/**
 * Two variants compared round by round: the ratio and the added latencies are medians of the paired
 * rounds' ratios and differences (each pair ran back to back, so it shares the machine's conditions),
 * which shrugs off a noisy neighbour better than a ratio of the two medians would.
 */
export async function alternate(a: Variant, b: Variant, options: AlternateOptions): Promise<Comparison> {
  const {
    figures: [figuresA, figuresB],
    load,
  } = await alternateAll([a, b], options);
  return {
    a: figuresA!,
    b: figuresB!,
    throughputRatio: pairedMedian(figuresA!, figuresB!, (a, b) => (a.qps > 0 ? b.qps / a.qps : undefined)),
    addedP50Us: pairedMedian(figuresA!, figuresB!, (a, b) => b.p50Us - a.p50Us),
    addedP99Us: pairedMedian(figuresA!, figuresB!, (a, b) => b.p99Us - a.p99Us),
    load,
  };
}

/**
 * The median over paired rounds of `pick(a's round, b's round)` for two variants of one
 * alternateAll run (round i of every variant ran in the same cycle); undefined picks are skipped.
 */
export function pairedMedian(
  a: VariantFigures,
  b: VariantFigures,
  pick: (roundA: RoundFigures, roundB: RoundFigures) => number | undefined,
): number {
  const values = a.rounds.flatMap((roundA, i) => {
    const roundB = b.rounds[i];
    const value = roundB ? pick(roundA, roundB) : undefined;
    return value === undefined ? [] : [value];
  });
  return median(values);
}

/**
 * Runs `runQuery` from `concurrency` loops for `seconds`: each loop starts its next query when the
 * previous one ends (a closed loop, like a worker pool), so throughput is what the system sustains.
 */
export async function closedLoop(
  runQuery: () => Promise<void>,
  concurrency: number,
  seconds: number,
): Promise<RoundResult> {
  const latenciesMs: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const loop = async () => {
    while (performance.now() < deadline) {
      const queryStarted = performance.now();
      try {
        await runQuery();
        latenciesMs.push(performance.now() - queryStarted);
      } catch (error) {
        errors++;
        firstError ??= error instanceof Error ? error.message : String(error);
        // A failing variant must not spin: a broken connection would otherwise fail in microseconds.
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return {
    queries: latenciesMs.length,
    errors,
    seconds: (performance.now() - started) / 1000,
    latenciesMs,
    ...(firstError ? { firstError } : {}),
  };
}

/**
 * Sequential samples that time themselves (`sample` returns the milliseconds to record), for costs
 * where setup and teardown must stay outside the figure, such as a driver's close.
 */
export async function sequentialSamples(
  sample: () => Promise<number>,
  seconds: number,
  maxSamples: number,
): Promise<RoundResult> {
  const latenciesMs: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  while (performance.now() < deadline && latenciesMs.length < maxSamples) {
    try {
      latenciesMs.push(await sample());
    } catch (error) {
      errors++;
      firstError ??= error instanceof Error ? error.message : String(error);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
  return {
    queries: latenciesMs.length,
    errors,
    seconds: (performance.now() - started) / 1000,
    latenciesMs,
    ...(firstError ? { firstError } : {}),
  };
}
