/**
 * Bare neo4j-driver against the same driver with instrumentDriver (Prometheus sink, the default
 * in-process set-up), both in this process against the same Neo4j, rounds alternating.
 */
import { instrumentDriver } from '../../src/instrument/index.ts';
import { PrometheusSink, Recorder } from '../../src/metrics/index.ts';
import { alternate, closedLoop } from '../support/compare.ts';
import { type BenchContext, errorNotes, type ThroughputCell, throughputTable } from '../support/context.ts';
import { combinedLoad, format, type Section } from '../support/report.ts';
import { benchDriver, jsDriverVersion, jsQuery, WORKLOADS } from '../support/workloads.ts';

export const INSTRUMENTED_THROUGHPUT_TARGET = 0.97;

export async function benchInstrumentedDriver(context: BenchContext): Promise<Section> {
  const { settings, neo4j } = context;
  const bare = benchDriver(neo4j.uri, neo4j.credentials);
  const instrumented = benchDriver(neo4j.uri, neo4j.credentials);
  const recorder = new Recorder({ sinks: [new PrometheusSink()] });
  // The pool exists once the driver has connected; instrumentDriver finds it then.
  await instrumented.verifyConnectivity();
  const handle = instrumentDriver(instrumented, { recorder, poolName: 'bench', onWarning: context.log });
  if (!handle.poolObserved) throw new Error('instrumentDriver did not find the pool: the comparison would be unfair');
  const cells: ThroughputCell[] = [];
  try {
    for (const workload of WORKLOADS) {
      for (const concurrency of settings.concurrencies) {
        context.log(`  bare vs instrumented: ${workload.name}, concurrency ${concurrency}`);
        const comparison = await alternate(
          {
            name: 'bare',
            runRound: () => closedLoop(jsQuery(bare, workload), concurrency, settings.roundSeconds),
          },
          {
            name: 'instrumented',
            runRound: () => closedLoop(jsQuery(instrumented, workload), concurrency, settings.roundSeconds),
          },
          { rounds: settings.rounds, warmupRounds: settings.warmupRounds, meter: context.newMeter() },
        );
        cells.push({ workload, concurrency, comparison });
      }
    }
  } finally {
    await bare.close();
    await instrumented.close();
    await recorder.close();
  }
  const worst = cells.reduce((low, cell) => Math.min(low, cell.comparison.throughputRatio), Number.POSITIVE_INFINITY);
  return {
    id: 'instrumented',
    title: 'Bare neo4j-driver vs instrumented driver (JavaScript, in-process)',
    method:
      `neo4j-driver ${jsDriverVersion()} \`executeQuery\` in closed loops; the instrumented driver has \`instrumentDriver\` ` +
      `with a Prometheus sink. ${settings.rounds} alternating rounds of ${settings.roundSeconds} s per variant and cell ` +
      '(after a warm-up round): medians of the per-round figures; ratio and added p50 are medians over the paired rounds.',
    tables: [throughputTable(cells, 'bare', 'instrumented')],
    targets: [
      {
        target: `instrumented >= ${format.percent(INSTRUMENTED_THROUGHPUT_TARGET)} of bare throughput in every cell`,
        measured: `lowest ${format.percent(worst)}`,
        met: worst >= INSTRUMENTED_THROUGHPUT_TARGET,
      },
    ],
    load: combinedLoad(cells.map((cell) => cell.comparison.load)),
    notes: errorNotes(cells),
    data: cells.map(({ workload, concurrency, comparison }) => ({ workload: workload.key, concurrency, comparison })),
  };
}
