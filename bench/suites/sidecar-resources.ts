/**
 * The sidecar process's resident memory and CPU: idle (probes and alerts on their default schedule,
 * a fleet's worth of series held), then during each phase the other suites ran through it (proxied
 * rounds, scrapes), summed per phase.
 */
import type { BenchContext } from '../support/context.ts';
import { format, type Section } from '../support/report.ts';
import { productionNodeFlags } from '../support/sidecar-process.ts';

export const RESIDENT_TARGET_MB = 100;
const IDLE_SECONDS = 20;

/** Measures the idle phase; run it first, before any load has grown the heap. */
export async function measureIdleSidecar(context: BenchContext): Promise<void> {
  context.log(`  sidecar idle for ${IDLE_SECONDS} s`);
  context.sidecar.startPhase('idle: probes and alerts on, fleet series held');
  await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000));
  context.sidecar.endPhase();
}

export const BACK_TO_BACK_SCRAPE_PHASE = 'scraped back to back (/metrics)';

const megabytes = (mebibytes: number) => (mebibytes * 2 ** 20) / 1e6;

export function sidecarResourcesSection(context: BenchContext): Section {
  const phases = context.sidecar.phases();
  // Hundreds of scrapes in a row are a stress test, not how Prometheus scrapes (every 15-60 s): the
  // target is judged on the other phases, and the stress peak is reported beside it.
  const steady = phases.filter((phase) => phase.phase !== BACK_TO_BACK_SCRAPE_PHASE);
  const stress = phases.find((phase) => phase.phase === BACK_TO_BACK_SCRAPE_PHASE);
  const steadyPeakMB = megabytes(Math.max(...steady.map((phase) => phase.residentMiBPeak)));
  const stressText = stress ? `; ${megabytes(stress.residentMiBPeak).toFixed(0)} MB while scraped back to back` : '';
  return {
    id: 'sidecar-resources',
    title: 'Sidecar resident memory and CPU',
    method:
      `The sidecar in its own Node.js process (${context.sidecar.fromSource ? 'from source under tsx, which adds about 35 MiB' : `compiled to JavaScript and started with the image's Node flags (${productionNodeFlags().join(' ') || 'none'}), as in production`}; ` +
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
        measured: `peak ${steadyPeakMB.toFixed(0)} MB idle and under query load${stressText}`,
        met: steadyPeakMB <= RESIDENT_TARGET_MB,
      },
    ],
    data: phases,
  };
}
