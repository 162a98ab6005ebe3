/**
 * GET /metrics on the sidecar process holding a fleet's series (10 pools x 5 databases, see
 * synthetic-series.ts, plus its own pool, probe, alert and process metrics), as Prometheus scrapes
 * it: over loopback HTTP with keep-alive, one scrape at a time, timed from request to last byte.
 */
import type { BenchContext } from '../support/context.ts';
import { format, type Section } from '../support/report.ts';
import { median, summarizeLatencies } from '../support/stats.ts';
import { DEFAULT_FLEET } from '../support/synthetic-series.ts';
import { BACK_TO_BACK_SCRAPE_PHASE } from './sidecar-resources.ts';

export const SCRAPE_TARGET_MS = 5;
const SCRAPES_PER_ROUND = 50;

export async function benchScrape(context: BenchContext): Promise<Section> {
  const { sidecar, settings } = context;
  const url = sidecar.metricsUrl;
  let body = '';
  for (let i = 0; i < 5; i++) body = await (await fetch(url)).text(); // warm-up: JIT, keep-alive socket
  const samples = body.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
  const families = body.split('\n').filter((line) => line.startsWith('# TYPE ')).length;

  const meter = context.newMeter();
  meter.start();
  const rounds: Array<{ p50Ms: number; p99Ms: number; maxMs: number }> = [];
  sidecar.startPhase(BACK_TO_BACK_SCRAPE_PHASE);
  let scrapes = 0;
  for (let round = 0; round < settings.rounds; round++) {
    const latencies: number[] = [];
    for (let i = 0; i < SCRAPES_PER_ROUND; i++) {
      const started = performance.now();
      const response = await fetch(url);
      await response.text();
      latencies.push(performance.now() - started);
    }
    scrapes += latencies.length;
    const summary = summarizeLatencies(latencies);
    rounds.push({ p50Ms: summary.p50Us / 1000, p99Ms: summary.p99Us / 1000, maxMs: Math.max(...latencies) });
  }
  sidecar.endPhase(scrapes);
  const load = meter.stop();
  const p50Ms = median(rounds.map((round) => round.p50Ms));
  const p99Ms = median(rounds.map((round) => round.p99Ms));
  const maxMs = Math.max(...rounds.map((round) => round.maxMs));
  return {
    id: 'scrape',
    title: `/metrics scrape time with ${DEFAULT_FLEET.pools} pools x ${DEFAULT_FLEET.databases} databases of series`,
    method:
      `${settings.rounds} rounds of ${SCRAPES_PER_ROUND} sequential scrapes of the sidecar process over loopback HTTP ` +
      '(keep-alive), request to last byte; medians of the per-round p50 and p99.',
    tables: [
      {
        headers: ['samples', 'metric families', 'body KiB', 'p50 ms', 'p99 ms', 'max ms'],
        rows: [
          [
            samples.length.toLocaleString('en-US'),
            String(families),
            (body.length / 1024).toFixed(0),
            format.millis(p50Ms),
            format.millis(p99Ms),
            format.millis(maxMs),
          ],
        ],
      },
    ],
    targets: [
      {
        target: `scrape <= ${SCRAPE_TARGET_MS} ms (p50)`,
        measured: `${format.millis(p50Ms)} ms`,
        met: p50Ms <= SCRAPE_TARGET_MS,
      },
    ],
    load: [load],
    data: { samples: samples.length, families, bodyBytes: body.length, rounds, p50Ms, p99Ms, maxMs },
  };
}
