/**
 * The sidecar process's resident memory and CPU: idle (probes and alerts on their default schedule,
 * a fleet's worth of series held), then during each phase the other suites ran through it (proxied
 * rounds, scrapes), summed per phase.
 */
import type { BenchContext } from '../support/context.ts';
import { format, type Section } from '../support/report.ts';

export const RESIDENT_TARGET_MB = 100;
const IDLE_SECONDS = 20;

/** Measures the idle phase; run it first, before any load has grown the heap. */
export async function measureIdleSidecar(context: BenchContext): Promise<void> {
  context.log(`  sidecar idle for ${IDLE_SECONDS} s`);
  context.sidecar.startPhase('idle: probes and alerts on, fleet series held');
  await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000));
  context.sidecar.endPhase();
}

export function sidecarResourcesSection(context: BenchContext): Section {
  const phases = context.sidecar.phases();
  const peakMiB = Math.max(...phases.map((phase) => phase.residentMiBPeak));
  const peakMB = (peakMiB * 2 ** 20) / 1e6;
  return {
    id: 'sidecar-resources',
    title: 'Sidecar resident memory and CPU',
    method:
      `The sidecar in its own Node.js process (${context.sidecar.fromSource ? 'from source under tsx, which adds about 35 MiB' : 'compiled to JavaScript, as in production'}; ` +
      'default components: probes every 15 s, alerts, ' +
      'the proxy when built in), holding 10 pools x 5 databases of series. Resident memory (VmRSS) sampled every ' +
      '100 ms; CPU time from /proc, summed over each phase (proxied rounds only for proxy phases).',
    tables: [
      {
        headers: ['phase', 'seconds', 'CPU % of one core', 'CPU µs per query or scrape', 'RSS peak MiB', 'RSS end MiB'],
        align: ['l', 'r', 'r', 'r', 'r', 'r'],
        rows: phases.map((phase) => [
          phase.phase,
          phase.seconds.toFixed(0),
          phase.cpuPercentOfOneCore.toFixed(1),
          phase.cpuMicrosPerQuery !== undefined ? format.micros(phase.cpuMicrosPerQuery) : '–',
          phase.residentMiBPeak.toFixed(1),
          phase.residentMiBEnd.toFixed(1),
        ]),
      },
    ],
    targets: [
      {
        target: `resident memory <= ${RESIDENT_TARGET_MB} MB`,
        measured: `peak ${peakMB.toFixed(0)} MB (${peakMiB.toFixed(0)} MiB)`,
        met: peakMB <= RESIDENT_TARGET_MB,
      },
    ],
    data: phases,
  };
}
