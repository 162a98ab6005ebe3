/**
 * The recorder's CPU per query with each exporter set-up: bench/recorder.ts measures it (run on its
 * own with `npx tsx bench/recorder.ts`); this wraps it in the report with the machine's load.
 */
import { benchRecorder } from '../recorder.ts';
import type { BenchContext } from '../support/context.ts';
import type { Section, TargetCheck } from '../support/report.ts';

export const RECORDER_TARGET_MICROS = 5;

export async function benchRecorderCpu(context: BenchContext): Promise<Section> {
  const meter = context.newMeter();
  meter.start();
  const rows = await benchRecorder();
  const load = meter.stop();
  const baseline = rows[0]?.microsPerQuery ?? 0;
  const targets: TargetCheck[] = rows.slice(1).map((row) => ({
    target: `recorder < ${RECORDER_TARGET_MICROS} µs CPU per query, ${row.exporters}`,
    measured: `${row.microsPerQuery.toFixed(2)} µs`,
    met: row.microsPerQuery < RECORDER_TARGET_MICROS,
  }));
  return {
    id: 'recorder',
    title: 'Recorder CPU per query by exporter',
    method:
      'bench/recorder.ts: what the instrumented driver records per pooled query (acquisition time, in-flight up and ' +
      'down, query duration, usage time), 200,000 times per round, process CPU time (user + system) per query; ' +
      'configurations alternate, 7 rounds, medians. StatsD sends real UDP packets to a loopback port.',
    tables: [
      {
        headers: ['exporters', 'CPU µs per query', 'over no exporter'],
        rows: rows.map((row) => [
          row.exporters,
          row.microsPerQuery.toFixed(2),
          `+${(row.microsPerQuery - baseline).toFixed(2)}`,
        ]),
      },
    ],
    targets,
    load: [load],
    data: rows,
  };
}
