/**
 * Query statistics by fingerprint (pg_stat_statements for Neo4j): sources hand finished queries to
 * Recorder.recordQuery; /queries, /status, the `queries` command and the top-N exporter read them.
 * Importing this pulls in neither fastify, node-cron nor the proxy.
 */

export { exportTopQueries, type TopQueryExportOptions } from './export.ts';
export { type Fingerprint, FingerprintCache, fingerprint, fingerprintId, normalizeCypher } from './fingerprint.ts';
export {
  OTHER_ID,
  QUERY_SORTS,
  type QuerySample,
  type QuerySort,
  QueryStatistics,
  type QueryStatisticsOptions,
  type QueryStatsRow,
  type QueryStatsSnapshot,
  UNREADABLE_ID,
} from './statistics.ts';
