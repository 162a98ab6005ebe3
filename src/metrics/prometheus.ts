/**
 * Prometheus exporter. The metric state lives in plain per-series objects, registered in a
 * prom-client Registry as custom metric families, so prom-client renders the exposition format
 * (and hosts the default process metrics) while the per-query path stays cheap: prom-client's own
 * labelled children re-hash the label object on every observe, which costs more than the rest
 * of the recorder together.
 */
import client, { type Registry } from 'prom-client';
import type { MetricDefinition } from './definitions.ts';
import { OPENMETRICS_CONTENT_TYPE, renderOpenMetrics } from './openmetrics.ts';
import type { MetricSink, Recorder, SeriesSink } from './recorder.ts';

export interface PrometheusSinkOptions {
  /** Where the metrics are registered; a fresh registry when omitted. */
  registry?: Registry;
}

interface ExportedSample {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

interface ScalarSeries {
  labels: Record<string, string>;
  value: number;
}

interface HistogramSeries {
  labels: Record<string, string>;
  /** Per-bucket (not cumulative) counts; the last slot is +Inf. */
  bucketCounts: Float64Array;
  sum: number;
  count: number;
}

/** The shape prom-client's Registry expects of a metric: name, help, type and an async get(). */
abstract class Family<S> {
  readonly aggregator = 'sum';
  protected readonly series = new Set<S>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    private readonly beforeCollect: () => void,
  ) {}

  add(series: S): void {
    this.series.add(series);
  }

  delete(series: S): void {
    this.series.delete(series);
  }

  reset(): void {
    this.series.clear();
  }

  async get(): Promise<{ name: string; help: string; type: string; values: ExportedSample[]; aggregator: string }> {
    this.beforeCollect();
    return { name: this.name, help: this.help, type: this.type, values: this.samples(), aggregator: this.aggregator };
  }

  protected abstract samples(): ExportedSample[];
}

class ScalarFamily extends Family<ScalarSeries> {
  protected samples(): ExportedSample[] {
    return [...this.series].map((series) => ({ value: series.value, labels: series.labels }));
  }
}

class HistogramFamily extends Family<HistogramSeries> {
  constructor(
    name: string,
    help: string,
    readonly bounds: readonly number[],
    beforeCollect: () => void,
  ) {
    super(name, help, 'histogram', beforeCollect);
  }

  protected samples(): ExportedSample[] {
    const out: ExportedSample[] = [];
    for (const series of this.series) {
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += series.bucketCounts[i]!;
        out.push({
          value: cumulative,
          labels: { ...series.labels, le: this.bounds[i]! },
          metricName: `${this.name}_bucket`,
        });
      }
      out.push({ value: series.count, labels: { ...series.labels, le: '+Inf' }, metricName: `${this.name}_bucket` });
      out.push({ value: series.sum, labels: series.labels, metricName: `${this.name}_sum` });
      out.push({ value: series.count, labels: series.labels, metricName: `${this.name}_count` });
    }
    return out;
  }
}

export class PrometheusSink implements MetricSink {
  readonly registry: Registry;
  private readonly families = new Map<MetricDefinition, Family<ScalarSeries> | HistogramFamily>();
  private recorder: Recorder | undefined;

  constructor(options: PrometheusSinkOptions = {}) {
    this.registry = options.registry ?? new client.Registry();
  }

  attach(recorder: Recorder): void {
    this.recorder = recorder;
  }

  /**
   * The scrape body. Samplers run first: a gauge series they create for the first time would
   * otherwise be registered mid-render and only show up on the next scrape.
   */
  async render(format: 'prometheus' | 'openmetrics'): Promise<{ contentType: string; body: string }> {
    this.recorder?.sample();
    if (format === 'openmetrics') {
      return { contentType: OPENMETRICS_CONTENT_TYPE, body: await renderOpenMetrics(this.registry) };
    }
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  series(definition: MetricDefinition, labelValues: readonly string[]): SeriesSink {
    const labels = Object.fromEntries(definition.labelNames.map((name, i) => [name, labelValues[i]!]));
    const family = this.familyFor(definition);
    if (family instanceof HistogramFamily) {
      const bounds = family.bounds;
      const series: HistogramSeries = { labels, bucketCounts: new Float64Array(bounds.length + 1), sum: 0, count: 0 };
      family.add(series);
      return {
        record: (value) => {
          let bucket = 0;
          while (bucket < bounds.length && value > bounds[bucket]!) bucket++;
          series.bucketCounts[bucket]!++;
          series.sum += value;
          series.count++;
        },
        remove: () => family.delete(series),
      };
    }
    const series: ScalarSeries = { labels, value: 0 };
    family.add(series);
    const remove = () => family.delete(series);
    if (definition.kind === 'counter') {
      return {
        record: (value) => {
          series.value += value;
        },
        remove,
      };
    }
    return {
      record: (value) => {
        series.value = value;
      },
      remove,
    };
  }

  private familyFor(definition: MetricDefinition): Family<ScalarSeries> | HistogramFamily {
    const existing = this.families.get(definition);
    if (existing) return existing;
    // Gauges of live state (pool sizes) are refreshed by the recorder's samplers just before a scrape.
    const beforeCollect = definition.kind === 'gauge' ? () => this.recorder?.sample() : () => {};
    const family =
      definition.kind === 'histogram'
        ? new HistogramFamily(definition.name, definition.help, definition.buckets ?? [], beforeCollect)
        : new ScalarFamily(definition.name, definition.help, definition.kind, beforeCollect);
    this.registry.registerMetric(family as unknown as client.Metric);
    this.families.set(definition, family);
    return family;
  }
}
