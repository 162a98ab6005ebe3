/**
 * Prometheus exporter: one prom-client metric per definition, one cached child per series.
 */
import client, { type Registry } from 'prom-client';
import type { MetricDefinition } from './definitions.ts';
import { OPENMETRICS_CONTENT_TYPE, renderOpenMetrics } from './openmetrics.ts';
import type { MetricSink, Recorder, SeriesSink } from './recorder.ts';

type PromMetric = client.Counter<string> | client.Gauge<string> | client.Histogram<string>;

export interface PrometheusSinkOptions {
  /** Where the metrics are registered; a fresh registry when omitted. */
  registry?: Registry;
}

export class PrometheusSink implements MetricSink {
  readonly registry: Registry;
  private readonly metrics = new Map<MetricDefinition, PromMetric>();
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
    const metric = this.metricFor(definition);
    const labels = Object.fromEntries(definition.labelNames.map((name, i) => [name, labelValues[i]!]));
    const hasLabels = definition.labelNames.length > 0;
    switch (definition.kind) {
      case 'counter': {
        const child = hasLabels
          ? (metric as client.Counter<string>).labels(labels)
          : (metric as client.Counter<string>);
        return { record: (value) => child.inc(value), remove: () => this.removeSeries(metric, labels, hasLabels) };
      }
      case 'gauge': {
        const child = hasLabels ? (metric as client.Gauge<string>).labels(labels) : (metric as client.Gauge<string>);
        return { record: (value) => child.set(value), remove: () => this.removeSeries(metric, labels, hasLabels) };
      }
      case 'histogram': {
        const child = hasLabels
          ? (metric as client.Histogram<string>).labels(labels)
          : (metric as client.Histogram<string>);
        return { record: (value) => child.observe(value), remove: () => this.removeSeries(metric, labels, hasLabels) };
      }
    }
  }

  private removeSeries(metric: PromMetric, labels: Record<string, string>, hasLabels: boolean): void {
    if (hasLabels) metric.remove(labels);
    else metric.reset();
  }

  private metricFor(definition: MetricDefinition): PromMetric {
    const existing = this.metrics.get(definition);
    if (existing) return existing;
    const common = {
      name: definition.name,
      help: definition.help,
      labelNames: [...definition.labelNames],
      registers: [this.registry],
    };
    let metric: PromMetric;
    switch (definition.kind) {
      case 'counter':
        metric = new client.Counter(common);
        break;
      case 'gauge': {
        // Gauges of live state (pool sizes) are refreshed by the recorder's samplers just before a scrape.
        const sink = this;
        metric = new client.Gauge({
          ...common,
          collect() {
            sink.recorder?.sample();
          },
        });
        break;
      }
      case 'histogram':
        metric = new client.Histogram({ ...common, buckets: [...(definition.buckets ?? [])] });
        break;
    }
    this.metrics.set(definition, metric);
    return metric;
  }
}
