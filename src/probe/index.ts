/**
 * Scheduled probes against Neo4j (acquisition, round trip, fresh connect, server census) and pool
 * sizing advice. The sidecar registers `probesComponentFactory`; the rest is for tests and embedding.
 */
export type { CensusReport, CensusVisibility, LongTransaction } from './census.ts';
export {
  createProbesComponent,
  type ProbesComponent,
  type ProbesComponentOptions,
  probesComponentFactory,
} from './component.ts';
export { FAILURE_REASONS, type FailureReason } from './outcome.ts';
export { PROBE_NAMES, type ProbeName } from './probes.ts';
export { type ProbeReadiness, type ProbeResult, ProbeScheduler } from './scheduler.ts';
export { PoolSizer, type PoolSizing, type SizingVerdict } from './sizing.ts';
