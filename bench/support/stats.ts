/** Order statistics for benchmark samples. */

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Nearest-rank percentile (p in 0..100) of values already sorted ascending. */
export function percentileOfSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export interface LatencySummary {
  count: number;
  p50Us: number;
  p99Us: number;
  meanUs: number;
}

/** Summarises latencies given in milliseconds (what performance.now() differences are) as microseconds. */
export function summarizeLatencies(latenciesMs: readonly number[] | Float64Array): LatencySummary {
  const sorted = Float64Array.from(latenciesMs).sort();
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    count: sorted.length,
    p50Us: percentileOfSorted(sorted, 50) * 1000,
    p99Us: percentileOfSorted(sorted, 99) * 1000,
    meanUs: sorted.length > 0 ? (sum / sorted.length) * 1000 : Number.NaN,
  };
}
