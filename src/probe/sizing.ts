/**
 * Pool sizing advice from the pools' own measurements (every pool this sidecar's recorder sees: its own
 * driver and the proxy's upstream pools).
 *
 * Little's law: the connections a load holds on average = acquisitions per second x mean seconds a
 * connection stays checked out. Over a sliding window that is (sum of hold times) / window, measured
 * from neo4j_driver_connections_acquisition_seconds and neo4j_driver_connections_usage_seconds. The
 * average hides bursts, so the verdict also looks at the peaks sampled in the window: callers waiting
 * while every connection was in use, and acquisition timeouts, mean the pool is too small whatever the
 * average says.
 */
import type { Logger } from '../logger.ts';
import { pool as poolMetrics, sizing as sizingMetrics } from '../metrics/catalogue.ts';
import type { Recorder } from '../metrics/recorder.ts';

export type SizingVerdict = 'measuring' | 'no-traffic' | 'too-small' | 'ok' | 'oversized';

export interface PoolSizing {
  pool: string;
  address: string;
  maxConnections: number;
  /**
   * Little's law over the window: acquisitionsPerSecond x meanHoldSeconds, or the mean in-use count
   * sampled in the window when that is higher (connections not yet released have no hold time).
   */
  neededConnections: number;
  acquisitionsPerSecond: number;
  meanHoldSeconds: number | undefined;
  meanWaitSeconds: number | undefined;
  peakInUse: number;
  peakWaiting: number;
  acquisitionTimeouts: number;
  /** The span the numbers cover (shorter than the configured window right after start). */
  windowSeconds: number;
  verdict: SizingVerdict;
  /** A pool size that would fit the measured load, when the verdict is too-small or oversized. */
  suggestedMaxConnections?: number;
  advice: string;
}

export interface PoolSizerOptions {
  recorder: Recorder;
  windowSeconds: number;
  undersizedRatio: number;
  oversizedRatio: number;
  logIntervalSeconds: number;
  logger?: Logger;
}

interface Sample {
  at: number;
  acquisitions: number;
  acquisitionSeconds: number;
  releases: number;
  heldSeconds: number;
  timeouts: number;
  inUse: number;
  waiting: number;
  max: number;
}

/** Small pools cost little even when mostly idle; calling them oversized would be noise. */
const SMALLEST_POOL_CALLED_OVERSIZED = 10;
/** A verdict needs at least this share of the window measured. */
const MIN_WINDOW_SHARE = 0.5;

function key(pool: string, address: string): string {
  return `${pool}\u0000${address}`;
}

function round(value: number, digits = 3): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

export class PoolSizer {
  private readonly history = new Map<string, Sample[]>();
  private readonly lastLoggedAt = new Map<string, number>();
  private latest: PoolSizing[] = [];

  constructor(private readonly options: PoolSizerOptions) {}

  get last(): readonly PoolSizing[] {
    return this.latest;
  }

  /** Takes a sample of every pool, updates neo4j_driver_connections_needed and returns the advice. */
  observe(now = Date.now()): PoolSizing[] {
    const { recorder } = this.options;
    recorder.sample(true);
    const current = this.sampleAll(now);
    const needed = recorder.gauge(sizingMetrics.needed);
    const results: PoolSizing[] = [];
    const windowMs = this.options.windowSeconds * 1000;
    for (const [poolKey, sample] of current) {
      const samples = this.history.get(poolKey) ?? [];
      samples.push(sample);
      // Keep the newest sample at least a window old as the baseline, drop older ones.
      while (samples.length > 2 && samples[1]!.at <= now - windowMs) samples.shift();
      this.history.set(poolKey, samples);
      const [pool = '', address = ''] = poolKey.split('\u0000');
      const sizing = this.assess(pool, address, samples);
      if (!sizing) continue;
      needed.set({ pool, address }, sizing.neededConnections);
      results.push(sizing);
      this.maybeLog(poolKey, sizing, now);
    }
    for (const poolKey of [...this.history.keys()]) {
      if (current.has(poolKey)) continue;
      this.history.delete(poolKey);
      const [pool = '', address = ''] = poolKey.split('\u0000');
      needed.remove({ pool, address });
    }
    this.latest = results;
    return results;
  }

  clear(): void {
    const needed = this.options.recorder.gauge(sizingMetrics.needed);
    for (const poolKey of this.history.keys()) {
      const [pool = '', address = ''] = poolKey.split('\u0000');
      needed.remove({ pool, address });
    }
    this.history.clear();
    this.latest = [];
  }

  private sampleAll(now: number): Map<string, Sample> {
    const { recorder } = this.options;
    const samples = new Map<string, Sample>();
    for (const series of recorder.gauge(poolMetrics.max).snapshot()) {
      const pool = series.labels.pool ?? '';
      const address = series.labels.address ?? '';
      samples.set(key(pool, address), {
        at: now,
        acquisitions: 0,
        acquisitionSeconds: 0,
        releases: 0,
        heldSeconds: 0,
        timeouts: 0,
        inUse: 0,
        waiting: 0,
        max: series.value,
      });
    }
    const each = (
      snapshot: ReturnType<ReturnType<Recorder['gauge']>['snapshot']>,
      apply: (sample: Sample, value: number, count: number) => void,
    ) => {
      for (const series of snapshot) {
        const sample = samples.get(key(series.labels.pool ?? '', series.labels.address ?? ''));
        if (sample) apply(sample, series.value, series.count);
      }
    };
    each(recorder.histogram(poolMetrics.acquisitionSeconds).snapshot(), (sample, sum, count) => {
      sample.acquisitions = count;
      sample.acquisitionSeconds = sum;
    });
    each(recorder.histogram(poolMetrics.usageSeconds).snapshot(), (sample, sum, count) => {
      sample.releases = count;
      sample.heldSeconds = sum;
    });
    each(recorder.counter(poolMetrics.acquisitionTimeouts).snapshot(), (sample, value) => {
      sample.timeouts = value;
    });
    each(recorder.gauge(poolMetrics.inUse).snapshot(), (sample, value) => {
      sample.inUse = value;
    });
    each(recorder.gauge(poolMetrics.acquiring).snapshot(), (sample, value) => {
      sample.waiting = value;
    });
    return samples;
  }

  private assess(pool: string, address: string, samples: readonly Sample[]): PoolSizing | undefined {
    const first = samples[0]!;
    const last = samples[samples.length - 1]!;
    const spanSeconds = (last.at - first.at) / 1000;
    if (samples.length < 2 || spanSeconds <= 0) return undefined;
    const acquisitions = Math.max(0, last.acquisitions - first.acquisitions);
    const releases = Math.max(0, last.releases - first.releases);
    const heldSeconds = Math.max(0, last.heldSeconds - first.heldSeconds);
    const waitedSeconds = Math.max(0, last.acquisitionSeconds - first.acquisitionSeconds);
    const timeouts = Math.max(0, last.timeouts - first.timeouts);
    const acquisitionsPerSecond = acquisitions / spanSeconds;
    const meanHoldSeconds = releases > 0 ? heldSeconds / releases : undefined;
    const littlesLaw = meanHoldSeconds === undefined ? 0 : acquisitionsPerSecond * meanHoldSeconds;
    // Hold times are recorded at release: connections checked out for the whole window (long
    // transactions, leaks) are missing from them, but not from the in-use counts sampled meanwhile.
    const meanSampledInUse = samples.reduce((sum, sample) => sum + sample.inUse, 0) / samples.length;
    const neededConnections = Math.max(littlesLaw, meanSampledInUse);
    const peakInUse = Math.max(...samples.map((sample) => sample.inUse));
    const peakWaiting = Math.max(...samples.map((sample) => sample.waiting));
    const max = last.max;
    const base = {
      pool,
      address,
      maxConnections: max,
      neededConnections: round(neededConnections),
      acquisitionsPerSecond: round(acquisitionsPerSecond),
      meanHoldSeconds: meanHoldSeconds === undefined ? undefined : round(meanHoldSeconds, 6),
      meanWaitSeconds: acquisitions > 0 ? round(waitedSeconds / acquisitions, 6) : undefined,
      peakInUse,
      peakWaiting,
      acquisitionTimeouts: timeouts,
      windowSeconds: round(spanSeconds, 1),
    };
    const load = `${base.neededConnections} connections needed on average (${base.acquisitionsPerSecond} acquisitions/s x ${base.meanHoldSeconds ?? 0} s held), peak ${peakInUse} in use of ${max}`;

    if (spanSeconds < this.options.windowSeconds * MIN_WINDOW_SHARE) {
      return { ...base, verdict: 'measuring', advice: `measuring: ${load} over the first ${base.windowSeconds} s` };
    }
    if (acquisitions === 0 && peakInUse === 0) {
      return { ...base, verdict: 'no-traffic', advice: 'no acquisitions in the window' };
    }
    const starved = timeouts > 0 || (peakWaiting > 0 && peakInUse >= max);
    if (starved || neededConnections >= this.options.undersizedRatio * max) {
      const suggested = Math.max(
        max + 1,
        Math.ceil(Math.max(neededConnections / this.options.undersizedRatio, peakInUse + peakWaiting)),
      );
      const why = starved
        ? `callers waited for a connection (${timeouts} acquisition timeouts, up to ${peakWaiting} waiting while all ${max} were in use)`
        : `the average load alone uses ${Math.round((neededConnections / max) * 100)} % of the pool`;
      return {
        ...base,
        verdict: 'too-small',
        suggestedMaxConnections: suggested,
        advice: `too small: ${why}; ${load}. Raise maxConnectionPoolSize to about ${suggested}, or hold connections for less time.`,
      };
    }
    const busiest = Math.max(neededConnections, peakInUse);
    if (max > SMALLEST_POOL_CALLED_OVERSIZED && busiest < this.options.oversizedRatio * max) {
      const suggested = Math.max(SMALLEST_POOL_CALLED_OVERSIZED, Math.ceil(busiest * 2));
      return {
        ...base,
        verdict: 'oversized',
        suggestedMaxConnections: suggested,
        advice: `oversized: ${load}. A maxConnectionPoolSize of about ${suggested} would do; every replica's pool counts against the server's connection capacity.`,
      };
    }
    return { ...base, verdict: 'ok', advice: `fits the load: ${load}` };
  }

  private maybeLog(poolKey: string, sizing: PoolSizing, now: number): void {
    const logger = this.options.logger;
    if (!logger || (sizing.verdict !== 'too-small' && sizing.verdict !== 'oversized')) return;
    const last = this.lastLoggedAt.get(poolKey);
    if (last !== undefined && now - last < this.options.logIntervalSeconds * 1000) return;
    this.lastLoggedAt.set(poolKey, now);
    const fields = {
      component: 'pool-sizing',
      pool: sizing.pool,
      address: sizing.address,
      verdict: sizing.verdict,
      neededConnections: sizing.neededConnections,
      maxConnections: sizing.maxConnections,
      suggestedMaxConnections: sizing.suggestedMaxConnections,
    };
    const message = `pool ${sizing.pool} (${sizing.address}) ${sizing.advice}`;
    if (sizing.verdict === 'too-small') logger.warn(fields, message);
    else logger.info(fields, message);
  }
}
