export { allMetrics, pool, query, sidecar } from './catalogue.ts';
export {
  defineCounter,
  defineGauge,
  defineHistogram,
  LATENCY_BUCKETS_SECONDS,
  type LabelValues,
  LIFETIME_BUCKETS_SECONDS,
  type MetricDefinition,
  type MetricKind,
  type MetricUnit,
  QUERY_BUCKETS_SECONDS,
} from './definitions.ts';
export { HOME_DATABASE_LABEL, HomeDatabases } from './home-databases.ts';
export { OPENMETRICS_CONTENT_TYPE, renderOpenMetrics } from './openmetrics.ts';
export { type ProcessMetricsOptions, registerProcessMetrics } from './process-metrics.ts';
export { PrometheusSink, type PrometheusSinkOptions } from './prometheus.ts';
export type { QuerySample, QuerySink, QueryStatsOutcome } from './query-sink.ts';
export {
  Counter,
  Gauge,
  Histogram,
  type MetricSink,
  Recorder,
  type RecorderOptions,
  type SeriesSink,
  type SeriesSnapshot,
} from './recorder.ts';
export { type StatsdEvent, StatsdSink, type StatsdSinkOptions, type StatsdTagFormat } from './statsd.ts';
export { KNOWN_DRIVER_NAMES, type KnownDriverName, userAgentFamily } from './user-agent.ts';
