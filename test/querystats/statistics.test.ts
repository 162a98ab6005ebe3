import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { PrometheusSink, Recorder } from '../../src/metrics/index.ts';
import {
  exportTopQueries,
  fingerprint,
  OTHER_ID,
  type QuerySample,
  QueryStatistics,
  UNREADABLE_ID,
} from '../../src/querystats/index.ts';
import { SpaceSaving } from '../../src/querystats/top-counts.ts';
import { parseExposition } from '../support/prometheus-text.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function sample(text: string | null, overrides: Partial<QuerySample> = {}): QuerySample {
  return {
    text,
    database: 'neo4j',
    mode: 'read',
    outcome: 'success',
    errorCode: null,
    durationSeconds: 0.001,
    records: 1,
    client: 'neo4j-javascript/6',
    ...overrides,
  };
}

describe('QueryStatistics', () => {
  it('counts calls, errors by code, records, time, mode, clients and attribution per fingerprint and database', () => {
    const stats = new QueryStatistics();
    for (let i = 0; i < 5; i++) {
      stats.record(
        sample(`MATCH (n:Person {id: ${i}}) RETURN n`, { records: 2, durationSeconds: 0.01, attribution: 'sync' }),
      );
    }
    stats.record(
      sample("MATCH (n:Person {id: 'x'}) RETURN n", {
        outcome: 'error',
        errorCode: 'Neo.ClientError.Statement.SyntaxError',
        records: 0,
        durationSeconds: 0.03,
        mode: 'write',
        client: 'neo4j-python/5',
        attribution: 'report',
      }),
    );
    stats.record(sample('MATCH (n:Person {id: 7}) RETURN n', { database: 'other' }));
    stats.record(sample('MATCH (n:Person {id: 8}) RETURN n', { outcome: 'ignored' }));

    const { queries, totalCalls } = stats.snapshot();
    assert.equal(totalCalls, 7, 'an IGNORED query never ran and is not a call');
    const row = queries.find((q) => q.database === 'neo4j')!;
    assert.equal(row.id, fingerprint('MATCH (n:Person {id: 1}) RETURN n').id);
    assert.equal(row.query, 'MATCH (n:Person {id: ?}) RETURN n');
    assert.equal(row.calls, 6);
    assert.equal(row.errors, 1);
    assert.deepEqual(row.errorsByCode, { 'Neo.ClientError.Statement.SyntaxError': 1 });
    assert.equal(row.records, 10);
    assert.equal(row.mode, 'mixed');
    assert.ok(Math.abs(row.totalSeconds - 0.08) < 1e-9);
    assert.ok(Math.abs(row.meanSeconds - 0.08 / 6) < 1e-9);
    assert.equal(row.maxSeconds, 0.03);
    assert.deepEqual(row.clients, { 'neo4j-javascript/6': 5, 'neo4j-python/5': 1 });
    assert.deepEqual(row.attribution, { sync: 5, report: 1 });
    assert.equal(row.rankErrorSeconds, 0);
    const other = queries.find((q) => q.database === 'other')!;
    assert.equal(other.id, row.id, 'one fingerprint, counted per database');
    assert.equal(other.calls, 1);
  });

  it('estimates quantiles from the query buckets, never above the maximum', () => {
    const stats = new QueryStatistics();
    for (let ms = 1; ms <= 100; ms++) stats.record(sample('RETURN 1', { durationSeconds: ms / 1000 }));
    const [row] = stats.snapshot().queries;
    // Buckets 0.025-0.05 holds the 50th value and 0.075-0.1 the 95th and 99th.
    assert.ok(row!.p50Seconds > 0.025 && row!.p50Seconds <= 0.05, `p50 ${row!.p50Seconds}`);
    assert.ok(row!.p95Seconds > 0.075 && row!.p95Seconds <= 0.1, `p95 ${row!.p95Seconds}`);
    assert.ok(row!.p99Seconds >= row!.p95Seconds && row!.p99Seconds <= 0.1, `p99 ${row!.p99Seconds}`);
  });

  it('counts a text it could not read under one "unreadable" entry', () => {
    const stats = new QueryStatistics();
    stats.record(sample(null));
    stats.record(sample(null));
    assert.equal(stats.snapshot().queries[0]!.id, UNREADABLE_ID);
    assert.equal(stats.snapshot().queries[0]!.calls, 2);
  });

  it('sorts by total, mean, calls or errors, and limits', () => {
    const stats = new QueryStatistics();
    for (let i = 0; i < 10; i++) stats.record(sample('RETURN 1 AS many', { durationSeconds: 0.001 }));
    stats.record(sample('RETURN 1 AS slow', { durationSeconds: 0.5 }));
    for (let i = 0; i < 3; i++)
      stats.record(sample('RETURN 1 AS failing', { durationSeconds: 0.002, outcome: 'error' }));
    const first = (sort: 'total' | 'mean' | 'calls' | 'errors') => stats.snapshot({ sort }).queries[0]!.query;
    assert.equal(first('total'), 'RETURN ? AS slow');
    assert.equal(first('mean'), 'RETURN ? AS slow');
    assert.equal(first('calls'), 'RETURN ? AS many');
    assert.equal(first('errors'), 'RETURN ? AS failing');
    assert.equal(stats.snapshot({ limit: 2 }).queries.length, 2);
  });

  it('forgets everything on reset', () => {
    let now = 1_000_000;
    const stats = new QueryStatistics({ now: () => now });
    stats.record(sample('RETURN 1'));
    now += 60_000;
    stats.reset();
    assert.equal(stats.snapshot().queries.length, 0);
    assert.equal(stats.snapshot().totalCalls, 0);
    assert.equal(stats.since, new Date(now).toISOString());
  });

  it('100,000 distinct query shapes stay within the bound while the ten heaviest are reported exactly', () => {
    const maxFingerprints = 1000;
    const stats = new QueryStatistics({ maxFingerprints, cacheSize: 1000 });
    const heavy = Array.from({ length: 10 }, (_, i) => `MATCH (n:Heavy${i}) WHERE n.id = ${i} RETURN n`);
    const truth = heavy.map(() => ({ calls: 0, seconds: 0, errors: 0, records: 0 }));
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    let light = 0;
    for (let round = 0; round < 1000; round++) {
      for (let i = 0; i < heavy.length; i++) {
        // Heavier ones first, and each round unlike the last in its literal, as a worker's texts are.
        const seconds = (heavy.length - i) * 0.002 + (round % 7) * 0.0001;
        const error = round % 50 === i;
        stats.record(
          sample(heavy[i]!.replace(`= ${i}`, `= ${round}`), {
            durationSeconds: seconds,
            outcome: error ? 'error' : 'success',
            errorCode: error ? 'Neo.TransientError.General.DatabaseUnavailable' : null,
            records: 3,
          }),
        );
        truth[i]!.calls++;
        truth[i]!.seconds += seconds;
        truth[i]!.records += 3;
        if (error) truth[i]!.errors++;
      }
      for (let j = 0; j < 100; j++) {
        stats.record(sample(`MATCH (n:Light${light}) RETURN n.p${light}`, { durationSeconds: 0.0005 }));
        light++;
      }
    }
    gc();
    const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
    assert.equal(light, 100_000);

    const snapshot = stats.snapshot();
    assert.ok(snapshot.entries <= maxFingerprints, `${snapshot.entries} entries`);
    // ~2 KiB per entry (buckets, bounded maps, texts) and 2 x 1000 cached texts: well under 16 MiB.
    assert.ok(heapGrowth < 16 * 1024 * 1024, `heap grew ${(heapGrowth / 1024 / 1024).toFixed(1)} MiB`);
    const top = snapshot.queries.slice(0, 10);
    for (let i = 0; i < heavy.length; i++) {
      const row = top[i]!;
      assert.equal(row.id, fingerprint(heavy[i]!).id, `rank ${i}`);
      assert.equal(row.calls, truth[i]!.calls);
      assert.equal(row.errors, truth[i]!.errors);
      assert.equal(row.records, truth[i]!.records);
      assert.ok(Math.abs(row.totalSeconds - truth[i]!.seconds) < 1e-6);
      assert.equal(row.rankErrorSeconds, 0, 'admitted before any eviction: exact');
    }
    const folded = snapshot.queries.find((row) => row.id === OTHER_ID);
    assert.ok(folded !== undefined && folded.calls > 90_000, 'evicted shapes are folded into "other"');
    const summed = snapshot.queries.reduce((sum, row) => sum + row.calls, 0);
    assert.equal(summed, snapshot.totalCalls, 'held entries plus "other" account for every call');
    assert.equal(snapshot.totalCalls, 110_000);
  });
});

describe('SpaceSaving', () => {
  it('keeps every key heavier than total/k, whatever order the stream comes in', () => {
    const k = 20;
    const sketch = new SpaceSaving<null>(k);
    const weights = new Map<string, number>();
    let total = 0;
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < 20_000; i++) {
      // A few heavy keys amid a long tail.
      const key = random() < 0.3 ? `heavy${Math.floor(random() * 5)}` : `tail${Math.floor(random() * 5000)}`;
      const weight = 1 + Math.floor(random() * 3);
      const slot = sketch.get(key) ?? sketch.admit(key, null);
      slot.weight += weight;
      weights.set(key, (weights.get(key) ?? 0) + weight);
      total += weight;
    }
    const held = new Map([...sketch.values()].map((slot) => [slot.key, slot]));
    for (const [key, weight] of weights) {
      if (weight > total / k) assert.ok(held.has(key), `${key} (${weight} of ${total}) must be held`);
      const slot = held.get(key);
      if (slot) assert.ok(slot.weight >= weight && slot.weight - slot.error <= weight, `${key} bounds`);
    }
  });
});

describe('exportTopQueries', () => {
  it('exports series for the top N fingerprints only, and the text only when asked', async () => {
    for (const exportText of [false, true]) {
      const stats = new QueryStatistics();
      const prometheus = new PrometheusSink();
      const recorder = new Recorder({ sinks: [prometheus], queryStats: stats });
      exportTopQueries(recorder, stats, { topN: 3, exportText });
      for (let i = 0; i < 6; i++) {
        for (let call = 0; call <= i; call++) {
          recorder.recordQuery(sample(`MATCH (n:T${i}) RETURN n`, { durationSeconds: 0.01, records: 2 }));
        }
      }
      recorder.sample(true);
      const { samples } = parseExposition((await prometheus.render('prometheus')).body);
      const ids = new Set(
        samples.filter((s) => s.name === 'neo4j_query_fingerprint_calls_total').map((s) => s.labels.query_id),
      );
      const expected = [5, 4, 3].map((i) => fingerprint(`MATCH (n:T${i}) RETURN n`).id);
      assert.deepEqual([...ids].sort(), [...expected].sort());
      const calls = samples.find(
        (s) => s.name === 'neo4j_query_fingerprint_calls_total' && s.labels.query_id === expected[0],
      );
      assert.equal(calls?.value, 6);
      const p95 = samples.filter((s) => s.name === 'neo4j_query_fingerprint_duration_seconds');
      assert.equal(p95.length, 9, 'three quantiles for each of the three');
      const info = samples.filter((s) => s.name === 'neo4j_query_fingerprint_info');
      assert.equal(info.length, exportText ? 3 : 0);
      if (exportText) assert.ok(info.some((s) => s.labels.query === 'MATCH (n:T5) RETURN n'));

      // A new heaviest fingerprint pushes the lightest of the three out, series and all.
      for (let call = 0; call < 20; call++)
        recorder.recordQuery(sample('MATCH (n:New) RETURN n', { durationSeconds: 0.01 }));
      recorder.sample(true);
      const after = parseExposition((await prometheus.render('prometheus')).body).samples;
      const idsAfter = new Set(
        after.filter((s) => s.name === 'neo4j_query_fingerprint_calls_total').map((s) => s.labels.query_id),
      );
      assert.equal(idsAfter.size, 3);
      assert.ok(idsAfter.has(fingerprint('MATCH (n:New) RETURN n').id));
      assert.ok(!idsAfter.has(expected[2]));
    }
  });
});
