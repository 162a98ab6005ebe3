/**
 * The library half of neo4j-pool-sidecar: instrument a neo4j-driver Driver in a Node worker and
 * export its pool and query metrics. Importing this pulls in neither fastify, node-cron nor the proxy.
 */
export { type InstrumentedDriver, type InstrumentOptions, instrumentDriver } from './instrument/index.ts';
export {
  allMetrics,
  type MetricDefinition,
  type MetricSink,
  OPENMETRICS_CONTENT_TYPE,
  PrometheusSink,
  type PrometheusSinkOptions,
  type QuerySink,
  Recorder,
  type RecorderOptions,
  renderOpenMetrics,
  StatsdSink,
  type StatsdSinkOptions,
  type StatsdTagFormat,
} from './metrics/index.ts';
export {
  exportTopQueries,
  type Fingerprint,
  fingerprint,
  normalizeCypher,
  type QuerySample,
  type QuerySort,
  QueryStatistics,
  type QueryStatisticsOptions,
  type QueryStatsRow,
  type QueryStatsSnapshot,
  type TopQueryExportOptions,
} from './querystats/index.ts';
