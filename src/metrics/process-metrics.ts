/**
 * The sidecar's own Node.js process metrics: prom-client's defaults, except its event-loop delay
 * gauges. Those read seven statistics off the native delay histogram at every scrape, and the
 * standard deviation and mean walk the whole histogram (about 0.9 ms of CPU per scrape together,
 * most of a scrape's budget). Here the delay is reported from the cheap reads (minimum, maximum,
 * percentiles) under prom-client's names, and as 0 while nothing was measured, where prom-client
 * reports a minimum of 9.2e9 s.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import client, { type Registry } from 'prom-client';

const PROM_CLIENT_EVENT_LOOP_GAUGES = [
  'nodejs_eventloop_lag_seconds',
  'nodejs_eventloop_lag_min_seconds',
  'nodejs_eventloop_lag_max_seconds',
  'nodejs_eventloop_lag_mean_seconds',
  'nodejs_eventloop_lag_stddev_seconds',
  'nodejs_eventloop_lag_p50_seconds',
  'nodejs_eventloop_lag_p90_seconds',
  'nodejs_eventloop_lag_p99_seconds',
];

/** What each scrape reports, from the delays measured since the previous scrape. */
const EVENT_LOOP_DELAY_READINGS = [
  { name: 'nodejs_eventloop_lag_min_seconds', help: 'The minimum recorded event loop delay.', read: 'min' },
  { name: 'nodejs_eventloop_lag_max_seconds', help: 'The maximum recorded event loop delay.', read: 'max' },
  {
    name: 'nodejs_eventloop_lag_p50_seconds',
    help: 'The 50th percentile of the recorded event loop delays.',
    read: 50,
  },
  {
    name: 'nodejs_eventloop_lag_p90_seconds',
    help: 'The 90th percentile of the recorded event loop delays.',
    read: 90,
  },
  {
    name: 'nodejs_eventloop_lag_p99_seconds',
    help: 'The 99th percentile of the recorded event loop delays.',
    read: 99,
  },
] as const;

export interface ProcessMetricsOptions {
  /** Prepended to every name, e.g. `neo4j_sidecar_`. */
  prefix: string;
  /** Event-loop delay sampling resolution in milliseconds (prom-client's default: 10). */
  eventLoopResolutionMs?: number;
}

/** Registers the process metrics in `registry`; the returned function stops the delay monitor. */
export function registerProcessMetrics(registry: Registry, options: ProcessMetricsOptions): () => void {
  client.collectDefaultMetrics({ register: registry, prefix: options.prefix });
  for (const name of PROM_CLIENT_EVENT_LOOP_GAUGES) registry.removeSingleMetric(`${options.prefix}${name}`);

  const delays = monitorEventLoopDelay({ resolution: options.eventLoopResolutionMs ?? 10 });
  delays.enable();
  // One collect sets every reading, then starts the next interval, as prom-client's does; the
  // registry collects the first reading's gauge before the others.
  const collect = () => {
    for (const gauge of gauges) gauge.reset();
    if (delays.count === 0) return;
    EVENT_LOOP_DELAY_READINGS.forEach((reading, i) => {
      const nanoseconds =
        reading.read === 'min' ? delays.min : reading.read === 'max' ? delays.max : delays.percentile(reading.read);
      gauges[i]!.set(nanoseconds / 1e9);
    });
    delays.reset();
  };
  const gauges = EVENT_LOOP_DELAY_READINGS.map(
    (reading, i) =>
      new client.Gauge({
        name: `${options.prefix}${reading.name}`,
        help: reading.help,
        registers: [registry],
        ...(i === 0 ? { collect } : {}),
      }),
  );
  return () => delays.disable();
}
