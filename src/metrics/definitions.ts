/**
 * The shape of a metric in the sidecar's single metric model.
 *
 * A definition is plain data: every source (driver wrapper, proxy, probes) records against
 * definitions, and every exporter (Prometheus, StatsD) renders the same definitions. That is
 * what keeps `/metrics`, StatsD and docs/metrics.md telling the same story.
 */

export type MetricKind = 'counter' | 'gauge' | 'histogram';

/** The unit drives the StatsD type: seconds become `timing` in milliseconds. */
export type MetricUnit = 'seconds' | 'bytes' | 'connections' | 'queries' | 'messages' | 'ratio' | 'count';

export interface MetricDefinition<Label extends string = string> {
  readonly kind: MetricKind;
  /** Prometheus name, with the `_total` suffix on counters. */
  readonly name: string;
  readonly help: string;
  readonly unit: MetricUnit;
  readonly labelNames: readonly Label[];
  /** Dotted StatsD name, without the configured prefix. */
  readonly statsdName: string;
  /** Histogram bucket upper bounds, in the metric's unit. */
  readonly buckets?: readonly number[];
  /**
   * Labels whose values come from a small fixed set (pool names, outcomes). Values of the other
   * labels are capped per metric: past the cap they collapse into the value `other`.
   */
  readonly boundedLabels?: readonly Label[];
}

export type LabelValues<Label extends string> = { readonly [K in Label]: string };

function define<Label extends string>(
  kind: MetricKind,
  definition: Omit<MetricDefinition<Label>, 'kind'>,
): MetricDefinition<Label> {
  if (kind === 'counter' && !definition.name.endsWith('_total')) {
    throw new Error(`counter ${definition.name} must end in _total`);
  }
  if (kind === 'histogram' && !definition.buckets?.length) {
    throw new Error(`histogram ${definition.name} needs buckets`);
  }
  return Object.freeze({ kind, ...definition });
}

export function defineCounter<Label extends string>(
  definition: Omit<MetricDefinition<Label>, 'kind'>,
): MetricDefinition<Label> {
  return define('counter', definition);
}

export function defineGauge<Label extends string>(
  definition: Omit<MetricDefinition<Label>, 'kind'>,
): MetricDefinition<Label> {
  return define('gauge', definition);
}

export function defineHistogram<Label extends string>(
  definition: Omit<MetricDefinition<Label>, 'kind'>,
): MetricDefinition<Label> {
  return define('histogram', definition);
}

/** Latency buckets from 100 us to 60 s: pool acquisition is sub-millisecond when healthy and 60 s at the driver's default timeout. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

/** Query buckets follow OpenTelemetry's db.client.operation.duration advice, plus a sub-millisecond bucket. */
export const QUERY_BUCKETS_SECONDS: readonly number[] = [
  0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];

/** How long a connection stays checked out or open: from milliseconds to an hour (the driver's max lifetime). */
export const LIFETIME_BUCKETS_SECONDS: readonly number[] = [
  0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600,
];
