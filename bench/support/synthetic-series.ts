/**
 * A busy sidecar's metric series without a fleet to produce them: every pool and query metric filled
 * for `pools` pools x `databases` databases (each database on its own server address, as in a
 * cluster), both query modes and outcomes, and a few error codes. Scrape time and memory grow with
 * series, not with traffic, so this is what the /metrics and memory figures are measured with.
 */
import { pool, query } from '../../src/metrics/catalogue.ts';
import type { Recorder } from '../../src/metrics/recorder.ts';

export interface FleetShape {
  pools: number;
  databases: number;
}

export const DEFAULT_FLEET: FleetShape = { pools: 10, databases: 5 };

const ERROR_CODES = [
  'Neo.ClientError.Statement.SyntaxError',
  'Neo.TransientError.Transaction.DeadlockDetected',
  'AcquisitionTimeout',
];

/** Records the fleet's series once; the values are plausible, their number is what matters. */
export function recordSyntheticFleet(recorder: Recorder, shape: FleetShape = DEFAULT_FLEET): void {
  const histograms = [
    recorder.histogram(pool.acquisitionSeconds),
    recorder.histogram(pool.creationSeconds),
    recorder.histogram(pool.usageSeconds),
  ];
  const counters = [
    recorder.counter(pool.created),
    recorder.counter(pool.failed),
    recorder.counter(pool.closed),
    recorder.counter(pool.acquisitionTimeouts),
  ];
  const gauges = [
    recorder.gauge(pool.inUse),
    recorder.gauge(pool.idle),
    recorder.gauge(pool.creating),
    recorder.gauge(pool.acquiring),
    recorder.gauge(pool.max),
  ];
  const duration = recorder.histogram(query.duration);
  const errors = recorder.counter(query.errors);
  const inFlight = recorder.gauge(query.inFlight);
  for (let p = 0; p < shape.pools; p++) {
    const source = `worker-${p}`;
    inFlight.set({ source }, p % 3);
    for (let d = 0; d < shape.databases; d++) {
      const database = `db-${d}`;
      const poolLabels = { pool: `pool-${p}`, address: `${database}.neo4j.svc:7687` };
      for (const [i, histogram] of histograms.entries()) {
        for (let sample = 0; sample < 20; sample++) histogram.observe(poolLabels, 0.0005 * (i + 1) * (sample + 1));
      }
      for (const [i, counter] of counters.entries()) counter.inc(poolLabels, 10 * (i + 1));
      for (const [i, gauge] of gauges.entries()) gauge.set(poolLabels, i === 4 ? 100 : i + p);
      for (const mode of ['read', 'write']) {
        for (const outcome of ['success', 'error']) {
          for (let sample = 0; sample < 20; sample++) {
            duration.observe({ source, database, mode, outcome }, 0.001 * (sample + 1));
          }
        }
      }
      for (const code of ERROR_CODES) errors.inc({ source, database, code }, 3);
    }
  }
}
