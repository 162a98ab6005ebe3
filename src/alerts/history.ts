/**
 * What alert evaluation reads: the recorder's current values, plus a short history of counters so
 * that "increase over the window" and "rate" mean what they mean in PromQL.
 */
import type { MetricDefinition } from '../metrics/definitions.ts';
import type { Recorder, SeriesSnapshot } from '../metrics/recorder.ts';

export interface Measured {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface MetricReader {
  /** Milliseconds since the epoch of this evaluation. */
  readonly now: number;
  /** Current series of a gauge (pool gauges are sampled first). */
  current(definition: MetricDefinition): readonly SeriesSnapshot[];
  /**
   * Per label set: how much a counter (`value`) or a histogram's observation count (`count`) grew over
   * the window, and the seconds actually covered (shorter than the window right after start).
   * Nothing until two evaluations have been recorded.
   */
  increase(
    definition: MetricDefinition,
    windowMs: number,
    field?: 'value' | 'count',
  ): Array<Measured & { readonly spanSeconds: number }>;
}

interface Snapshot {
  at: number;
  series: Map<string, SeriesSnapshot>;
}

function labelKey(labels: Readonly<Record<string, string>>): string {
  return Object.keys(labels)
    .sort()
    .map((name) => `${name}=${labels[name]}`)
    .join('\u0000');
}

/** Keeps, per counter, the snapshots of the last `retainMs`. */
export class MetricHistory {
  private readonly snapshots = new Map<string, Snapshot[]>();

  constructor(
    private readonly recorder: Recorder,
    private readonly tracked: readonly MetricDefinition[],
    private readonly retainMs: number,
  ) {}

  /** Records the tracked counters at `now` and returns a reader for this evaluation. */
  record(now: number): MetricReader {
    // Forced: evaluations are seconds apart, and a pool gauge sampled 100 ms ago may already be stale.
    this.recorder.sample(true);
    for (const definition of this.tracked) {
      const list = this.snapshots.get(definition.name) ?? [];
      const series = new Map<string, SeriesSnapshot>();
      for (const snapshot of this.snapshotOf(definition)) series.set(labelKey(snapshot.labels), snapshot);
      list.push({ at: now, series });
      // Keep the newest snapshot at least retainMs old: it is the baseline of a full window.
      while (list.length > 2 && list[1]!.at <= now - this.retainMs) list.shift();
      this.snapshots.set(definition.name, list);
    }
    return {
      now,
      current: (definition) => this.snapshotOf(definition),
      increase: (definition, windowMs, field = 'value') => this.increase(definition.name, now, windowMs, field),
    };
  }

  private snapshotOf(definition: MetricDefinition): SeriesSnapshot[] {
    switch (definition.kind) {
      case 'counter':
        return this.recorder.counter(definition).snapshot();
      case 'gauge':
        return this.recorder.gauge(definition).snapshot();
      case 'histogram':
        return this.recorder.histogram(definition).snapshot();
    }
  }

  private increase(
    name: string,
    now: number,
    windowMs: number,
    field: 'value' | 'count',
  ): Array<Measured & { spanSeconds: number }> {
    const list = this.snapshots.get(name);
    if (!list || list.length < 2) return [];
    const latest = list[list.length - 1]!;
    let base = list[0]!;
    for (const snapshot of list) {
      if (snapshot.at <= now - windowMs) base = snapshot;
      else break;
    }
    if (base === latest) return [];
    const spanSeconds = (latest.at - base.at) / 1000;
    const results: Array<Measured & { spanSeconds: number }> = [];
    for (const [key, series] of latest.series) {
      const before = base.series.get(key);
      const end = field === 'value' ? series.value : series.count;
      const start = before ? (field === 'value' ? before.value : before.count) : 0;
      // A drop means the series was recreated (counter reset): count from zero, as PromQL does.
      results.push({ labels: series.labels, value: end >= start ? end - start : end, spanSeconds });
    }
    return results;
  }
}
