/**
 * What query statistics cost per query: a fingerprint cache hit (target <= 2 µs CPU), a miss (the
 * normaliser on a typical query), QueryStatistics.record as the sources call it, and the proxy's CPU
 * per RETURN 1 with statistics on against off (the same in-memory replay as the codec figure).
 * Run on its own with `npx tsx bench/suites/query-stats.ts`.
 *
 * Cache hits are measured on freshly made strings, as the proxy decodes a new one per RUN: a string
 * looked up twice has its hash cached by V8, which would flatter the figure.
 */
import { PrometheusSink, Recorder } from '../../src/metrics/index.ts';
import { FingerprintCache, normalizeCypher, QueryStatistics } from '../../src/querystats/index.ts';
import type { BenchContext } from '../support/context.ts';
import type { Section } from '../support/report.ts';
import { benchProxyCodec } from './proxy-codec.ts';

export const CACHE_HIT_TARGET_MICROS = 2;
const ROUNDS = 7;
const CALLS_PER_ROUND = 100_000;
const PROXY_PAIRS = 3;

/** Texts a worker repeats: a few shapes, literal values varying, about 60-200 characters. */
const TEXTS = Array.from({ length: 20 }, (_, i) =>
  i % 2 === 0
    ? `MATCH (p:Person {tenant: 'tenant-${i}'})-[:KNOWS*1..2]->(f:Person) WHERE f.age > ${20 + i} RETURN f.name AS name, count(*) AS c ORDER BY c DESC LIMIT ${10 + i}`
    : `UNWIND $rows AS row MERGE (n:Item${i} {id: row.id}) SET n += row.props, n.updated = timestamp() RETURN count(n)`,
);

/** Copies of the texts that are distinct string objects, so no lookup finds a cached hash. */
function freshCopies(count: number): string[] {
  return Array.from({ length: count }, (_, i) => Buffer.from(TEXTS[i % TEXTS.length]!).toString('utf8'));
}

function cpuMicrosPer(calls: number, work: () => void): number {
  const before = process.cpuUsage();
  work();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / calls;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

export interface QueryStatsBenchResult {
  cacheHitMicros: number;
  cacheMissMicros: number;
  recordMicros: number;
  proxyOffMicros: number;
  proxyOnMicros: number;
}

export async function measureQueryStats(): Promise<QueryStatsBenchResult> {
  const cache = new FingerprintCache(1000);
  for (const text of TEXTS) cache.get(text);
  const statistics = new QueryStatistics();
  const hits: number[] = [];
  const misses: number[] = [];
  const records: number[] = [];
  const proxyOff: number[] = [];
  const proxyOn: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const copies = freshCopies(CALLS_PER_ROUND);
    hits.push(
      cpuMicrosPer(CALLS_PER_ROUND, () => {
        for (const text of copies) cache.get(text);
      }),
    );
    const missCalls = CALLS_PER_ROUND / 10;
    misses.push(
      cpuMicrosPer(missCalls, () => {
        for (let i = 0; i < missCalls; i++) normalizeCypher(copies[i]!);
      }),
    );
    const recordCopies = freshCopies(CALLS_PER_ROUND);
    records.push(
      cpuMicrosPer(CALLS_PER_ROUND, () => {
        for (let i = 0; i < CALLS_PER_ROUND; i++) {
          statistics.record({
            text: recordCopies[i]!,
            database: 'neo4j',
            mode: 'read',
            outcome: 'success',
            errorCode: null,
            durationSeconds: 0.002 + (i % 10) * 0.0005,
            records: 3,
            client: 'neo4j-python/5',
          });
        }
      }),
    );
    // The proxy replay (itself 7 rounds, median) alternates with statistics off and on, so both see the
    // same machine; three pairs are enough and keep the section short.
    if (round >= PROXY_PAIRS) continue;
    proxyOff.push((await benchProxyCodec(new Recorder({ sinks: [new PrometheusSink()] }))).microsPerQuery);
    proxyOn.push(
      (await benchProxyCodec(new Recorder({ sinks: [new PrometheusSink()], queryStats: new QueryStatistics() })))
        .microsPerQuery,
    );
  }
  return {
    cacheHitMicros: median(hits),
    cacheMissMicros: median(misses),
    recordMicros: median(records),
    proxyOffMicros: median(proxyOff),
    proxyOnMicros: median(proxyOn),
  };
}

export async function benchQueryStats(context: BenchContext): Promise<Section> {
  const meter = context.newMeter();
  meter.start();
  const result = await measureQueryStats();
  const load = meter.stop();
  const micros = (value: number) => value.toFixed(2);
  return {
    id: 'query-stats',
    title: 'Query statistics CPU per query',
    method:
      'bench/suites/query-stats.ts: a fingerprint cache hit on freshly made strings (as the proxy decodes one per RUN), ' +
      'a miss (normalising a ~150-character query), QueryStatistics.record with 20 texts of 2 shapes rotating, ' +
      `${CALLS_PER_ROUND.toLocaleString('en-US')} calls per round; and the proxy's CPU per RETURN 1 replayed in memory ` +
      `with statistics off and on, alternating (${PROXY_PAIRS} pairs); process CPU time, ${ROUNDS} rounds, medians.`,
    tables: [
      {
        headers: ['what', 'CPU µs per query'],
        rows: [
          ['fingerprint cache hit', micros(result.cacheHitMicros)],
          ['fingerprint cache miss (normalise)', micros(result.cacheMissMicros)],
          ['QueryStatistics.record (hit, entry update)', micros(result.recordMicros)],
          ['proxy per RETURN 1, statistics off', micros(result.proxyOffMicros)],
          ['proxy per RETURN 1, statistics on', micros(result.proxyOnMicros)],
          ['proxy: statistics added', `+${micros(result.proxyOnMicros - result.proxyOffMicros)}`],
        ],
      },
    ],
    targets: [
      {
        target: `fingerprint cache hit <= ${CACHE_HIT_TARGET_MICROS} µs CPU`,
        measured: `${micros(result.cacheHitMicros)} µs`,
        met: result.cacheHitMicros <= CACHE_HIT_TARGET_MICROS,
      },
    ],
    load: [load],
    data: result,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await measureQueryStats();
  console.log(JSON.stringify(result, null, 2));
}
