/**
 * The recorder's CPU cost per query, with Prometheus only, StatsD only and both exporters on.
 *
 * One "query" is what the instrumented driver records for a pooled query: an acquisition time,
 * the in-flight gauge up and down, the query duration and the connection's usage time. StatsD
 * sends to a real UDP socket on loopback (nothing listens; UDP does not care).
 * Rounds of the configurations alternate so machine noise hits them alike; medians are reported.
 */
import { cpus } from 'node:os';
import { type MetricSink, PrometheusSink, pool, query, Recorder, StatsdSink } from '../src/metrics/index.ts';

const QUERIES_PER_ROUND = 200_000;
const ROUNDS = 7;

function statsdSink(packValues = false): StatsdSink {
  return new StatsdSink({
    packValues,
    host: '127.0.0.1',
    port: 9, // discard
    prefix: 'neo4j.',
    tagFormat: 'dogstatsd',
    sampleRate: 1,
    maxBufferSize: 1400,
    flushIntervalMs: 1000,
  });
}

function makeRecorder(sinks: MetricSink[]) {
  const recorder = new Recorder({ sinks });
  const poolLabels = { pool: 'worker', address: 'neo4j:7687' };
  const acquisition = recorder.histogram(pool.acquisitionSeconds);
  const usage = recorder.histogram(pool.usageSeconds);
  const duration = recorder.histogram(query.duration);
  const inFlight = recorder.gauge(query.inFlight);
  const inFlightLabels = { source: 'driver' };
  const modes = ['read', 'write'];
  return {
    recorder,
    recordQuery(i: number) {
      acquisition.observe(poolLabels, 0.0002);
      inFlight.inc(inFlightLabels);
      inFlight.dec(inFlightLabels);
      duration.observe({ source: 'driver', database: 'neo4j', mode: modes[i & 1]!, outcome: 'success' }, 0.003);
      usage.observe(poolLabels, 0.004);
    },
  };
}

function microsPerQuery(recordQuery: (i: number) => void): number {
  const before = process.cpuUsage();
  for (let i = 0; i < QUERIES_PER_ROUND; i++) recordQuery(i);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / QUERIES_PER_ROUND;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export async function benchRecorder(): Promise<Array<{ exporters: string; microsPerQuery: number }>> {
  const configurations = {
    'none (baseline)': () => makeRecorder([]),
    'Prometheus only': () => makeRecorder([new PrometheusSink()]),
    'StatsD only': () => makeRecorder([statsdSink()]),
    'Prometheus + StatsD': () => makeRecorder([new PrometheusSink(), statsdSink()]),
    'Prometheus + StatsD, packed values': () => makeRecorder([new PrometheusSink(), statsdSink(true)]),
  };
  const built = Object.entries(configurations).map(([name, make]) => ({ name, ...make(), samples: [] as number[] }));
  for (const entry of built) microsPerQuery(entry.recordQuery); // warm-up: JIT and series caches
  for (let round = 0; round < ROUNDS; round++) {
    for (const entry of built) {
      entry.samples.push(microsPerQuery(entry.recordQuery));
      await new Promise((resolve) => setImmediate(resolve)); // let hot-shots flush its buffer
    }
  }
  await Promise.all(built.map((entry) => entry.recorder.close()));
  return built.map((entry) => ({ exporters: entry.name, microsPerQuery: median(entry.samples) }));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const results = await benchRecorder();
  console.log(
    `\nRecorder CPU per query (${ROUNDS} rounds x ${QUERIES_PER_ROUND} queries, median; ${cpus()[0]?.model}, Node ${process.version})\n`,
  );
  console.log('| exporters | CPU µs per query | vs baseline |');
  console.log('| --- | ---: | ---: |');
  const baseline = results[0]!.microsPerQuery;
  for (const row of results) {
    console.log(
      `| ${row.exporters} | ${row.microsPerQuery.toFixed(2)} | +${(row.microsPerQuery - baseline).toFixed(2)} |`,
    );
  }
}
