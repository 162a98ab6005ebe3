/**
 * pg_stat_statements for Neo4j: statistics per query fingerprint and database, fed by every source
 * (the proxy, instrumentDriver) and read by /queries, /status, the CLI and the top-N exporter.
 *
 * Memory is bounded whatever the workload: at most `maxFingerprints` fingerprint × database entries
 * are held, chosen by space-saving on total time (see top-counts.ts for the guarantee), and what an
 * evicted entry had counted is folded into one "other" entry, so the totals over all entries stay
 * exact. Per-entry maps (error codes, client families, attribution) are bounded the same way.
 * The fingerprint cache holds at most 2 × `cacheSize` texts of at most 16 KiB each.
 */
import { QUERY_BUCKETS_SECONDS } from '../metrics/definitions.ts';
import type { QuerySample, QuerySink, QueryStatsOutcome } from '../metrics/query-sink.ts';
import { FingerprintCache } from './fingerprint.ts';
import { SpaceSaving, TopCounts } from './top-counts.ts';

export type { QuerySample, QueryStatsOutcome };

export interface QueryStatisticsOptions {
  /** Fingerprint × database entries kept (the space-saving capacity). Default 1000. */
  readonly maxFingerprints?: number;
  /** Exact texts cached per generation. Default 1000. */
  readonly cacheSize?: number;
  /** Error codes, client families and attribution values kept per entry. Default 10. */
  readonly maxValuesPerEntry?: number;
  /** A tx_metadata key whose value each source reports as the query's attribution (e.g. `task`). */
  readonly metadataKey?: string | null;
  /** Milliseconds since the epoch; injectable for tests. */
  readonly now?: () => number;
}

export type QuerySort = 'total' | 'mean' | 'calls' | 'errors';
export const QUERY_SORTS: readonly QuerySort[] = ['total', 'mean', 'calls', 'errors'];

/** One row of /queries. */
export interface QueryStatsRow {
  /** Short fingerprint id; "other" for the folded remainder, "unreadable" for texts the source could not read. */
  readonly id: string;
  readonly query: string;
  readonly database: string;
  /** read, write, or mixed when both were seen. */
  readonly mode: 'read' | 'write' | 'mixed' | 'none';
  readonly calls: number;
  readonly errors: number;
  readonly errorsByCode: Record<string, number>;
  readonly totalSeconds: number;
  readonly meanSeconds: number;
  readonly maxSeconds: number;
  readonly p50Seconds: number;
  readonly p95Seconds: number;
  readonly p99Seconds: number;
  readonly records: number;
  readonly clients: Record<string, number>;
  readonly attribution?: Record<string, number>;
  readonly firstSeen: string;
  readonly lastSeen: string;
  /**
   * Space-saving over-estimate of totalSeconds this entry's rank rests on: 0 means every figure is
   * exact since the statistics started; otherwise the entry was admitted after an eviction and its
   * figures count from its admission (firstSeen).
   */
  readonly rankErrorSeconds: number;
}

export interface QueryStatsSnapshot {
  /** When counting started (start-up or the last reset). */
  readonly since: string;
  /** Entries held now, and the bound. */
  readonly entries: number;
  readonly maxFingerprints: number;
  /** Calls and time over all queries, held or folded. */
  readonly totalCalls: number;
  readonly totalSeconds: number;
  readonly queries: QueryStatsRow[];
}

export const OTHER_ID = 'other';
export const UNREADABLE_ID = 'unreadable';
const BUCKET_BOUNDS = QUERY_BUCKETS_SECONDS;

/** A negative or NaN duration (a clock step) counts as 0 rather than corrupting the sums. */
function validSeconds(seconds: number): number {
  return Number.isFinite(seconds) && seconds > 0 ? seconds : 0;
}

class Entry {
  calls = 0;
  errors = 0;
  totalSeconds = 0;
  maxSeconds = 0;
  records = 0;
  readCalls = 0;
  writeCalls = 0;
  firstSeenMs = 0;
  lastSeenMs = 0;
  /** Observations per QUERY_BUCKETS_SECONDS bucket, the last one +Inf: mergeable, like a Prometheus histogram. */
  readonly buckets = new Float64Array(BUCKET_BOUNDS.length + 1);
  readonly errorsByCode: TopCounts;
  readonly clients: TopCounts;
  attribution: TopCounts | null = null;

  constructor(
    readonly id: string,
    readonly text: string,
    readonly database: string,
    readonly maxValues: number,
  ) {
    this.errorsByCode = new TopCounts(maxValues);
    this.clients = new TopCounts(maxValues);
  }

  add(sample: QuerySample, nowMs: number): void {
    const seconds = validSeconds(sample.durationSeconds);
    if (this.calls === 0) this.firstSeenMs = nowMs;
    this.lastSeenMs = nowMs;
    this.calls++;
    this.totalSeconds += seconds;
    if (seconds > this.maxSeconds) this.maxSeconds = seconds;
    this.records += sample.records;
    if (sample.mode === 'read') this.readCalls++;
    else this.writeCalls++;
    let bucket = 0;
    while (bucket < BUCKET_BOUNDS.length && seconds > BUCKET_BOUNDS[bucket]!) bucket++;
    this.buckets[bucket]!++;
    if (sample.outcome === 'error') {
      this.errors++;
      this.errorsByCode.add(sample.errorCode ?? 'unknown');
    }
    this.clients.add(sample.client);
    if (sample.attribution != null) {
      this.attribution ??= new TopCounts(this.maxValues);
      this.attribution.add(sample.attribution);
    }
  }

  /** Folds another entry in (the "other" row): sums, bucket counts, and the time range. */
  merge(other: Entry): void {
    if (other.calls === 0) return;
    if (this.calls === 0 || other.firstSeenMs < this.firstSeenMs) this.firstSeenMs = other.firstSeenMs;
    if (other.lastSeenMs > this.lastSeenMs) this.lastSeenMs = other.lastSeenMs;
    this.calls += other.calls;
    this.errors += other.errors;
    this.totalSeconds += other.totalSeconds;
    this.maxSeconds = Math.max(this.maxSeconds, other.maxSeconds);
    this.records += other.records;
    this.readCalls += other.readCalls;
    this.writeCalls += other.writeCalls;
    for (let i = 0; i < this.buckets.length; i++) this.buckets[i]! += other.buckets[i]!;
    for (const [code, count] of other.errorsByCode.entries()) this.errorsByCode.add(code, count);
    for (const [client, count] of other.clients.entries()) this.clients.add(client, count);
  }

  /** Like histogram_quantile: linear within the bucket, capped at the largest value seen. */
  quantile(q: number): number {
    if (this.calls === 0) return 0;
    const rank = q * this.calls;
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      const count = this.buckets[i]!;
      if (seen + count >= rank && count > 0) {
        const lower = i === 0 ? 0 : BUCKET_BOUNDS[i - 1]!;
        const upper = i < BUCKET_BOUNDS.length ? BUCKET_BOUNDS[i]! : this.maxSeconds;
        const estimate = lower + (upper - lower) * ((rank - seen) / count);
        return Math.min(estimate, this.maxSeconds);
      }
      seen += count;
    }
    return this.maxSeconds;
  }

  row(rankErrorSeconds: number): QueryStatsRow {
    const mode =
      this.readCalls > 0 && this.writeCalls > 0
        ? 'mixed'
        : this.readCalls > 0
          ? 'read'
          : this.writeCalls > 0
            ? 'write'
            : 'none';
    return {
      id: this.id,
      query: this.text,
      database: this.database,
      mode,
      calls: this.calls,
      errors: this.errors,
      errorsByCode: this.errorsByCode.toObject(),
      totalSeconds: this.totalSeconds,
      meanSeconds: this.calls === 0 ? 0 : this.totalSeconds / this.calls,
      maxSeconds: this.maxSeconds,
      p50Seconds: this.quantile(0.5),
      p95Seconds: this.quantile(0.95),
      p99Seconds: this.quantile(0.99),
      records: this.records,
      clients: this.clients.toObject(),
      ...(this.attribution !== null ? { attribution: this.attribution.toObject() } : {}),
      firstSeen: new Date(this.firstSeenMs).toISOString(),
      lastSeen: new Date(this.lastSeenMs).toISOString(),
      rankErrorSeconds,
    };
  }
}

const SORT_KEYS: Readonly<Record<QuerySort, (row: QueryStatsRow) => number>> = {
  total: (row) => row.totalSeconds,
  mean: (row) => row.meanSeconds,
  calls: (row) => row.calls,
  errors: (row) => row.errors,
};

export function sortQueryRows(rows: QueryStatsRow[], sort: QuerySort): QueryStatsRow[] {
  const key = SORT_KEYS[sort];
  return rows.sort((a, b) => key(b) - key(a) || b.totalSeconds - a.totalSeconds || (a.id < b.id ? -1 : 1));
}

/** What the top-N exporter reads of one held entry. */
export interface QueryStatsEntryView {
  readonly id: string;
  readonly text: string;
  readonly database: string;
  readonly calls: number;
  readonly errors: number;
  readonly totalSeconds: number;
  readonly records: number;
  quantile(q: number): number;
}

export class QueryStatistics implements QuerySink {
  readonly maxFingerprints: number;
  readonly metadataKey: string | null;
  readonly #cache: FingerprintCache;
  readonly #maxValues: number;
  readonly #now: () => number;
  #table: SpaceSaving<Entry>;
  #other: Entry;
  #sinceMs: number;
  #totalCalls = 0;
  #totalSeconds = 0;
  /** The last text and its id: a worker repeating one query skips even the cache lookup's hashing. */
  #lastText: string | null = null;
  #lastId = '';
  #lastNormalized = '';

  constructor(options: QueryStatisticsOptions = {}) {
    this.maxFingerprints = Math.max(1, options.maxFingerprints ?? 1000);
    this.metadataKey = options.metadataKey ?? null;
    this.#cache = new FingerprintCache(options.cacheSize ?? 1000);
    this.#maxValues = options.maxValuesPerEntry ?? 10;
    this.#now = options.now ?? Date.now;
    this.#sinceMs = this.#now();
    this.#table = this.#newTable();
    this.#other = this.#newOther();
  }

  record(sample: QuerySample): void {
    if (sample.outcome === 'ignored') return; // never executed: the failure before it is what counted
    let id = UNREADABLE_ID;
    let text = '(query text not read: message larger than proxy.maxMessageBytes)';
    const raw = sample.text;
    if (raw !== null) {
      if (raw === this.#lastText) {
        id = this.#lastId;
        text = this.#lastNormalized;
      } else {
        const found = this.#cache.get(raw);
        id = found.id;
        text = found.text;
        this.#lastText = raw;
        this.#lastId = id;
        this.#lastNormalized = text;
      }
    }
    const database = sample.database;
    const key = `${id}\u0000${database}`;
    const slot = this.#table.get(key) ?? this.#table.admit(key, new Entry(id, text, database, this.#maxValues));
    const entry = slot.value;
    const nowMs = this.#now();
    entry.add(sample, nowMs);
    const seconds = validSeconds(sample.durationSeconds);
    slot.weight += seconds;
    this.#totalCalls++;
    this.#totalSeconds += seconds;
  }

  /** Forgets everything counted: the explicit reset (POST /queries/reset). */
  reset(): void {
    this.#table = this.#newTable();
    this.#other = this.#newOther();
    this.#totalCalls = 0;
    this.#totalSeconds = 0;
    this.#sinceMs = this.#now();
  }

  get size(): number {
    return this.#table.size;
  }

  /** When counting started: start-up or the last reset. */
  get since(): string {
    return new Date(this.#sinceMs).toISOString();
  }

  snapshot(options: { sort?: QuerySort; limit?: number } = {}): QueryStatsSnapshot {
    const rows = sortQueryRows(
      [...this.#table.values()].map((slot) => slot.value.row(slot.error)),
      options.sort ?? 'total',
    );
    // The folded remainder is not a query: it goes last, however much it adds up to.
    const sorted = this.#other.calls > 0 ? [...rows, this.#other.row(0)] : rows;
    return {
      since: this.since,
      entries: this.#table.size,
      maxFingerprints: this.maxFingerprints,
      totalCalls: this.#totalCalls,
      totalSeconds: this.#totalSeconds,
      queries: options.limit === undefined ? sorted : sorted.slice(0, options.limit),
    };
  }

  /** The `n` held entries with the largest total time (never "other"): what gets per-fingerprint metric series. */
  top(n: number): QueryStatsEntryView[] {
    const entries = [...this.#table.values()].map((slot) => slot.value);
    entries.sort((a, b) => b.totalSeconds - a.totalSeconds || (a.id < b.id ? -1 : 1));
    return entries.slice(0, n);
  }

  #newTable(): SpaceSaving<Entry> {
    return new SpaceSaving<Entry>(this.maxFingerprints, (evicted) => this.#other.merge(evicted.value));
  }

  #newOther(): Entry {
    return new Entry(OTHER_ID, '(all other queries)', '*', this.#maxValues);
  }
}
