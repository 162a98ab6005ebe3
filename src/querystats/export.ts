/**
 * Per-fingerprint metric series for the current top N by total time, written through the recorder
 * (so Prometheus and StatsD export the same series) from a sampler: the work happens at scrape or
 * flush time, never per query. Counters are advanced by what each entry gained since the last
 * sample; an entry leaving the top N has its series removed, so query_id stays bounded by N.
 */
import { queryStats as metrics } from '../metrics/catalogue.ts';
import type { Recorder } from '../metrics/recorder.ts';
import type { QueryStatistics, QueryStatsEntryView } from './statistics.ts';

export interface TopQueryExportOptions {
  readonly topN: number;
  /** Export neo4j_query_fingerprint_info with the normalised text; off by default. */
  readonly exportText: boolean;
}

const QUANTILES: ReadonlyArray<readonly [string, number]> = [
  ['0.5', 0.5],
  ['0.95', 0.95],
  ['0.99', 0.99],
];

interface Exported {
  readonly id: string;
  readonly database: string;
  readonly text: string;
  calls: number;
  errors: number;
  seconds: number;
  records: number;
}

/** Registers the sampler; returns a function that unregisters it (the series stay until the recorder closes). */
export function exportTopQueries(
  recorder: Recorder,
  statistics: QueryStatistics,
  options: TopQueryExportOptions,
): () => void {
  const calls = recorder.counter(metrics.calls);
  const errors = recorder.counter(metrics.errors);
  const seconds = recorder.counter(metrics.seconds);
  const records = recorder.counter(metrics.records);
  const quantiles = recorder.gauge(metrics.quantile);
  const info = recorder.gauge(metrics.info);
  const exported = new Map<string, Exported>();

  const remove = (key: string, state: Exported) => {
    const labels = { query_id: state.id, database: state.database };
    calls.remove(labels);
    errors.remove(labels);
    seconds.remove(labels);
    records.remove(labels);
    for (const [quantile] of QUANTILES) quantiles.remove({ ...labels, quantile });
    exported.delete(key);
    if (options.exportText && ![...exported.values()].some((other) => other.id === state.id)) {
      info.remove({ query_id: state.id, query: state.text });
    }
  };

  const advance = (entry: QueryStatsEntryView, state: Exported) => {
    const labels = { query_id: entry.id, database: entry.database };
    calls.inc(labels, entry.calls - state.calls);
    errors.inc(labels, entry.errors - state.errors);
    seconds.inc(labels, entry.totalSeconds - state.seconds);
    records.inc(labels, entry.records - state.records);
    state.calls = entry.calls;
    state.errors = entry.errors;
    state.seconds = entry.totalSeconds;
    state.records = entry.records;
    for (const [quantile, q] of QUANTILES) quantiles.set({ ...labels, quantile }, entry.quantile(q));
  };

  const sample = () => {
    const top = statistics.top(options.topN);
    const current = new Set<string>();
    for (const entry of top) {
      const key = `${entry.id}\u0000${entry.database}`;
      current.add(key);
      let state = exported.get(key);
      // Counted less than already exported: the statistics were reset, so the series restarts from 0.
      if (state !== undefined && (entry.calls < state.calls || entry.totalSeconds < state.seconds)) {
        remove(key, state);
        state = undefined;
      }
      if (state === undefined) {
        state = {
          id: entry.id,
          database: entry.database,
          text: entry.text,
          calls: 0,
          errors: 0,
          seconds: 0,
          records: 0,
        };
        exported.set(key, state);
        const labels = { query_id: entry.id, database: entry.database };
        // Present at 0 from the first sample, so increase() sees the first calls as a change.
        for (const counter of [calls, errors, seconds, records]) counter.touch(labels);
        if (options.exportText) info.set({ query_id: entry.id, query: entry.text }, 1);
      }
      advance(entry, state);
    }
    for (const [key, state] of [...exported]) if (!current.has(key)) remove(key, state);
  };

  const unregister = recorder.addSampler(sample);
  return () => {
    unregister();
  };
}
