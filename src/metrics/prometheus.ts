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
  /** `name{a="x",b="y"}` (or just the name), rendered once: scrapes then only format numbers. */
  lineStart: string;
  value: number;
}

interface HistogramSeries {
  labels: Record<string, string>;
  /** `a="x",b="y",` inside the braces, before `le`; `{a="x",b="y"}` for _sum and _count. */
  labelPrefix: string;
  labelBlock: string;
  /** Per-bucket (not cumulative) counts; the last slot is +Inf. */
  bucketCounts: Float64Array;
  /**
   * `name_bucket{a="x",le="0.005"} ` per bucket, +Inf last: built at the first scrape and kept flat,
   * so a scrape appends two pieces per bucket line instead of five (the pieces, not the digits, are
   * what the final string costs to assemble).
   */
  bucketLineStarts?: readonly string[];
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

  /** This family in the Prometheus text format, without prom-client's per-sample label formatting. */
  abstract renderText(): string;

  protected header(): string {
    return `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`;
  }
}

function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labelPairs(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([name, value]) => `${name}="${escapeLabelValue(value)}"`)
    .join(',');
}

/** A concatenated string is a tree of its parts until something reads it; reading one character makes it flat. */
function flatten(text: string): string {
  text.charCodeAt(0);
  return text;
}

function formatNumber(value: number): string {
  if (Number.isFinite(value)) return String(value);
  if (Number.isNaN(value)) return 'NaN';
  return value > 0 ? '+Inf' : '-Inf';
}

class ScalarFamily extends Family<ScalarSeries> {
  protected samples(): ExportedSample[] {
    return [...this.series].map((series) => ({ value: series.value, labels: series.labels }));
  }

  renderText(): string {
    let text = this.header();
    for (const series of this.series) text += `${series.lineStart} ${formatNumber(series.value)}\n`;
    return text;
  }
}

class HistogramFamily extends Family<HistogramSeries> {
  /** `le="0.005"}` per bucket, rendered once. */
  private readonly boundLabels: readonly string[];

  constructor(
    name: string,
    help: string,
    readonly bounds: readonly number[],
    beforeCollect: () => void,
  ) {
    super(name, help, 'histogram', beforeCollect);
    this.boundLabels = bounds.map((bound) => `le="${formatNumber(bound)}"}`);
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

  renderText(): string {
    let text = this.header();
    for (const series of this.series) {
      series.bucketLineStarts ??= this.bucketLineStarts(series);
      const lineStarts = series.bucketLineStarts;
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += series.bucketCounts[i]!;
        text += `${lineStarts[i]}${cumulative}\n`;
      }
      text += `${lineStarts[this.bounds.length]}${series.count}\n`;
      text += `${this.name}_sum${series.labelBlock} ${formatNumber(series.sum)}\n`;
      text += `${this.name}_count${series.labelBlock} ${series.count}\n`;
    }
    return text;
  }

  private bucketLineStarts(series: HistogramSeries): string[] {
    const bucket = `${this.name}_bucket{${series.labelPrefix}`;
    return [...this.boundLabels, 'le="+Inf"}'].map((le) => flatten(`${bucket}${le} `));
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
    // Our families render themselves; anything else in the registry (process metrics, a worker's
    // own metrics) goes through prom-client as usual.
    const ours = new Set<unknown>(this.families.values());
    const parts: string[] = [];
    for (const metric of this.registry.getMetricsAsArray()) {
      if (ours.has(metric)) parts.push((metric as unknown as Family<unknown>).renderText());
      else parts.push(`${await this.registry.getSingleMetricAsString(metric.name)}\n`);
    }
    return { contentType: this.registry.contentType, body: parts.join('\n') };
  }

  series(definition: MetricDefinition, labelValues: readonly string[]): SeriesSink {
    const labels = Object.fromEntries(definition.labelNames.map((name, i) => [name, labelValues[i]!]));
    const family = this.familyFor(definition);
    if (family instanceof HistogramFamily) {
      const bounds = family.bounds;
      const pairs = labelPairs(labels);
      const series: HistogramSeries = {
        labels,
        labelPrefix: pairs ? `${pairs},` : '',
        labelBlock: pairs ? `{${pairs}}` : '',
        bucketCounts: new Float64Array(bounds.length + 1),
        sum: 0,
        count: 0,
      };
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
    const pairs = labelPairs(labels);
    const series: ScalarSeries = {
      labels,
      lineStart: pairs ? `${definition.name}{${pairs}}` : definition.name,
      value: 0,
    };
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
