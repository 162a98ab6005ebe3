/**
 * What a query source (instrumentDriver, the proxy) hands each finished query to, and the shape of
 * that query. The metrics side owns the contract so that the recorder and the sources need nothing
 * of src/querystats: QueryStatistics implements it, and the composition root passes it in.
 */

export type QueryStatsOutcome = 'success' | 'error' | 'ignored' | 'abandoned';

/** One finished query, as a source saw it. */
export interface QuerySample {
  /** The query text as sent; null when the source could not read it (a RUN over proxy.maxMessageBytes). */
  readonly text: string | null;
  readonly database: string;
  readonly mode: 'read' | 'write';
  readonly outcome: QueryStatsOutcome;
  readonly errorCode: string | null;
  readonly durationSeconds: number;
  readonly records: number;
  /** Who sent it: the user-agent family through the proxy, the source name in-process. Must be bounded. */
  readonly client: string;
  /** Value of the configured tx_metadata key, when present. */
  readonly attribution?: string | null;
}

/** Takes finished queries with their text (per-fingerprint statistics); must not throw, but may. */
export interface QuerySink {
  /** A tx_metadata key whose value sources report as each query's attribution; null for none. */
  readonly metadataKey: string | null;
  record(sample: QuerySample): void;
}
