/**
 * The one recorder every source reports to. It owns label handling (series cache, cardinality
 * cap) and fans each measurement out to the configured sinks (Prometheus, StatsD).
 *
 * It sits on every query, so the hot path is: one Map lookup per labelled call (or none with a
 * bound series), then one call per sink. Recording never throws into the caller.
 */
import { sidecar } from './catalogue.ts';
import type { LabelValues, MetricDefinition } from './definitions.ts';
import type { QuerySample, QuerySink } from './query-sink.ts';

/** Exporter-side state of one series (one label-value combination of one metric). */
export interface SeriesSink {
  /** Counter: add the value. Gauge: set it. Histogram: observe it. */
  record(value: number): void;
  /** Forget the series (a closed pool must not keep reporting its last gauge values). */
  remove(): void;
}

export interface MetricSink {
  /** Called once when the sink is attached, so pull-based exporters can ask for fresh gauges. */
  attach?(recorder: Recorder): void;
  series(definition: MetricDefinition, labelValues: readonly string[]): SeriesSink;
  /** Pushes anything buffered (StatsD); called on shutdown. */
  flush?(): Promise<void>;
  close?(): Promise<void>;
}

export interface RecorderOptions {
  sinks?: readonly MetricSink[];
  /** Label sets per metric beyond which new ones are folded into `other`. */
  maxSeriesPerMetric?: number;
  /** Told about sink failures; recording itself never throws. */
  onError?: (error: unknown) => void;
  /** Where recordQuery() hands finished queries (a QueryStatistics); none when absent. */
  queryStats?: QuerySink;
}

const OVERFLOW_VALUE = 'other';
const SAMPLE_MIN_INTERVAL_MS = 100;

class Series {
  constructor(
    readonly labelValues: readonly string[],
    readonly sinks: readonly SeriesSink[],
  ) {}
  /** Counter: running total. Gauge: current value. Histogram: sum of observations. */
  value = 0;
  /** Histogram: number of observations. */
  count = 0;
}

/** One series as read back by in-process consumers (alert evaluation, /status). */
export interface SeriesSnapshot {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
  readonly count: number;
}

/**
 * Label values → series, as a tree with one Map level per label. Looking a series up then needs
 * no string built per call (label values are usually constants whose hashes V8 has cached).
 */
type SeriesTree = Map<string, SeriesTree | Series>;

/** Shared machinery of counters, gauges and histograms: label values → cached series. */
abstract class Metric<Label extends string> {
  private readonly tree: SeriesTree = new Map();
  private readonly all = new Set<Series>();
  /** Label sets past the cap share these, keyed by their folded values; never cached in the tree, so memory stays bounded. */
  private readonly overflow = new Map<string, Series>();
  private unlabelled: Series | undefined;
  private overflowReported = false;

  constructor(
    protected readonly recorder: Recorder,
    readonly definition: MetricDefinition<Label>,
  ) {}

  protected seriesFor(labels: LabelValues<Label>): Series {
    const names = this.definition.labelNames;
    const last = names.length - 1;
    if (last < 0) {
      this.unlabelled ??= this.addSeries([]);
      return this.unlabelled;
    }
    let node = this.tree;
    for (let i = 0; i < last; i++) {
      const next = node.get(labels[names[i]!]) as SeriesTree | undefined;
      if (next === undefined) return this.createSeries(labels);
      node = next;
    }
    return (node.get(labels[names[last]!]) as Series | undefined) ?? this.createSeries(labels);
  }

  private createSeries(labels: LabelValues<Label>): Series {
    const definition = this.definition;
    const values = definition.labelNames.map((name) => String(labels[name] ?? ''));
    if (this.all.size - this.overflow.size >= this.recorder.maxSeriesPerMetric) return this.overflowSeries(values);
    const series = this.addSeries(values);
    let node = this.tree;
    for (let i = 0; i < values.length - 1; i++) {
      let next = node.get(values[i]!) as SeriesTree | undefined;
      if (next === undefined) {
        next = new Map();
        node.set(values[i]!, next);
      }
      node = next;
    }
    node.set(values[values.length - 1]!, series);
    return series;
  }

  private overflowSeries(values: string[]): Series {
    const definition = this.definition;
    const bounded = new Set<string>(definition.boundedLabels ?? []);
    const folded = definition.labelNames.map((name, i) => (bounded.has(name) ? values[i]! : OVERFLOW_VALUE));
    if (definition !== sidecar.seriesOverflow) {
      this.recorder.counter(sidecar.seriesOverflow).inc({ metric: definition.name });
      if (!this.overflowReported) {
        this.overflowReported = true;
        this.recorder.reportError(
          new Error(
            `${definition.name} reached ${this.recorder.maxSeriesPerMetric} series; folding new ones into "other"`,
          ),
        );
      }
    }
    const key = folded.join('\u0000');
    let series = this.overflow.get(key);
    if (!series) {
      series = this.addSeries(folded);
      this.overflow.set(key, series);
    }
    return series;
  }

  private addSeries(values: readonly string[]): Series {
    const series = new Series(values, this.recorder.createSinkSeries(this.definition, values));
    this.all.add(series);
    return series;
  }

  protected write(series: Series, value: number): void {
    const sinks = series.sinks;
    try {
      for (let i = 0; i < sinks.length; i++) sinks[i]!.record(value);
    } catch (error) {
      this.recorder.reportError(error);
    }
  }

  /** Drops the series for these labels from every sink. */
  remove(labels: LabelValues<Label>): void {
    const names = this.definition.labelNames;
    if (names.length === 0) return;
    let node = this.tree;
    for (let i = 0; i < names.length - 1; i++) {
      const next = node.get(labels[names[i]!]) as SeriesTree | undefined;
      if (next === undefined) return;
      node = next;
    }
    const leaf = labels[names[names.length - 1]!];
    const series = node.get(leaf) as Series | undefined;
    if (!series) return;
    node.delete(leaf);
    this.all.delete(series);
    for (const sink of series.sinks) {
      try {
        sink.remove();
      } catch (error) {
        this.recorder.reportError(error);
      }
    }
  }

  /** Current values of every series, for the sidecar's own alert evaluation and /status. */
  snapshot(): SeriesSnapshot[] {
    const names = this.definition.labelNames;
    return [...this.all].map((series) => ({
      labels: Object.fromEntries(names.map((name, i) => [name, series.labelValues[i]!])),
      value: series.value,
      count: series.count,
    }));
  }

  /** Number of distinct series, for tests and the cardinality guard. */
  get seriesCount(): number {
    return this.all.size;
  }
}

export class Counter<Label extends string> extends Metric<Label> {
  /**
   * Exports the series at 0 before its first event, so Prometheus' increase() sees the first
   * event as a change rather than the series appearing.
   */
  touch(labels: LabelValues<Label>): void {
    this.seriesFor(labels);
  }

  inc(labels: LabelValues<Label>, value = 1): void {
    if (!(value > 0)) return;
    const series = this.seriesFor(labels);
    series.value += value;
    this.write(series, value);
  }

  /** A counter pre-bound to one label set: no lookup per call. */
  bind(labels: LabelValues<Label>): (value?: number) => void {
    const series = this.seriesFor(labels);
    return (value = 1) => {
      if (!(value > 0)) return;
      series.value += value;
      this.write(series, value);
    };
  }
}

export class Gauge<Label extends string> extends Metric<Label> {
  set(labels: LabelValues<Label>, value: number): void {
    if (Number.isNaN(value)) return;
    const series = this.seriesFor(labels);
    series.value = value;
    this.write(series, value);
  }

  inc(labels: LabelValues<Label>, delta = 1): void {
    const series = this.seriesFor(labels);
    series.value += delta;
    this.write(series, series.value);
  }

  dec(labels: LabelValues<Label>, delta = 1): void {
    this.inc(labels, -delta);
  }
}

export class Histogram<Label extends string> extends Metric<Label> {
  observe(labels: LabelValues<Label>, value: number): void {
    if (!(value >= 0)) return;
    const series = this.seriesFor(labels);
    series.value += value;
    series.count++;
    this.write(series, value);
  }

  bind(labels: LabelValues<Label>): (value: number) => void {
    const series = this.seriesFor(labels);
    return (value) => {
      if (!(value >= 0)) return;
      series.value += value;
      series.count++;
      this.write(series, value);
    };
  }
}

export class Recorder {
  readonly maxSeriesPerMetric: number;
  /** Where recordQuery() goes; sources read its metadataKey to know what to attribute queries to. */
  readonly queryStats: QuerySink | undefined;
  private readonly sinks: MetricSink[] = [];
  private readonly metrics = new Map<MetricDefinition, Metric<string>>();
  private readonly samplers = new Set<() => void>();
  private readonly onError: (error: unknown) => void;
  private lastSampledAt = Number.NEGATIVE_INFINITY;

  constructor(options: RecorderOptions = {}) {
    this.maxSeriesPerMetric = options.maxSeriesPerMetric ?? 1000;
    this.onError = options.onError ?? (() => {});
    this.queryStats = options.queryStats;
    for (const sink of options.sinks ?? []) this.addSink(sink);
  }

  /** Attaches an exporter. Series created before it was attached are not replayed, so attach sinks first. */
  addSink(sink: MetricSink): void {
    this.sinks.push(sink);
    sink.attach?.(this);
  }

  counter<Label extends string>(definition: MetricDefinition<Label>): Counter<Label> {
    return this.metric(definition, 'counter', Counter) as Counter<Label>;
  }

  gauge<Label extends string>(definition: MetricDefinition<Label>): Gauge<Label> {
    return this.metric(definition, 'gauge', Gauge) as Gauge<Label>;
  }

  histogram<Label extends string>(definition: MetricDefinition<Label>): Histogram<Label> {
    return this.metric(definition, 'histogram', Histogram) as Histogram<Label>;
  }

  /**
   * Registers a function that refreshes gauges from live state (pool sizes). Samplers run just
   * before a Prometheus scrape or a StatsD flush, not on every event. Returns an unregister function.
   */
  addSampler(sampler: () => void): () => void {
    this.samplers.add(sampler);
    return () => this.samplers.delete(sampler);
  }

  /** Runs the samplers, at most once per 100 ms however many exporters ask. */
  sample(force = false): void {
    const now = performance.now();
    if (!force && now - this.lastSampledAt < SAMPLE_MIN_INTERVAL_MS) return;
    this.lastSampledAt = now;
    for (const sampler of this.samplers) {
      try {
        sampler();
      } catch (error) {
        this.reportError(error);
      }
    }
  }

  /**
   * One finished query with its text, for per-fingerprint statistics: to `sink` (a source's own, see
   * instrumentDriver's queryStats), by default the recorder's; a no-op without one.
   */
  recordQuery(sample: QuerySample, sink: QuerySink | undefined = this.queryStats): void {
    const statistics = sink;
    if (statistics === undefined) return;
    try {
      statistics.record(sample);
    } catch (error) {
      this.reportError(error);
    }
  }

  /** The metrics recorded so far (each with at least one series or bound handle). */
  definitions(): MetricDefinition[] {
    return [...this.metrics.keys()];
  }

  async flush(): Promise<void> {
    this.sample(true);
    await Promise.all(this.sinks.map((sink) => sink.flush?.()));
  }

  async close(): Promise<void> {
    await this.flush();
    await Promise.all(this.sinks.map((sink) => sink.close?.()));
  }

  /** @internal */
  createSinkSeries(definition: MetricDefinition, labelValues: readonly string[]): SeriesSink[] {
    return this.sinks.map((sink) => sink.series(definition, labelValues));
  }

  /** @internal */
  reportError(error: unknown): void {
    try {
      this.onError(error);
    } catch {
      // The error callback must not turn a lost metric into a failed query.
    }
  }

  private metric<Label extends string>(
    definition: MetricDefinition<Label>,
    kind: MetricDefinition['kind'],
    MetricClass: new (recorder: Recorder, definition: MetricDefinition<Label>) => Metric<Label>,
  ): Metric<Label> {
    const existing = this.metrics.get(definition);
    if (existing) return existing as unknown as Metric<Label>;
    if (definition.kind !== kind) {
      throw new Error(`${definition.name} is a ${definition.kind}, not a ${kind}`);
    }
    const created = new MetricClass(this, definition);
    this.metrics.set(definition, created as unknown as Metric<string>);
    return created;
  }
}
