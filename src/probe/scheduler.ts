/**
 * Runs the probes on a node-cron schedule: the due probes of a run in parallel (the acquisition probe
 * given a short head start, the census after the others, so a run lasts at most two timeouts plus that
 * head start), each bounded by the probe timeout, never two runs at once (node-cron's noOverlap, and runOnce joins a run in flight), each
 * run started after a small random delay so a fleet of sidecars does not probe in lockstep.
 *
 * Every outcome feeds the recorder: neo4j_probe_duration_seconds, neo4j_probe_up,
 * neo4j_probe_last_success_timestamp_seconds and neo4j_probe_failures_total{reason}.
 */
import cron, { type ScheduledTask } from 'node-cron';
import { LEAD_HEAD_START_MS, longestScheduleIntervalMs } from '../config/probes.ts';
import type { CredentialsGate } from '../driver/credentials.ts';
import type { Logger } from '../logger.ts';
import { probe as probeMetrics } from '../metrics/catalogue.ts';
import type { Recorder } from '../metrics/recorder.ts';
import { classifyFailure, describeFailure, FAILURE_REASONS, type FailureReason, withTimeout } from './outcome.ts';
import type { ProbeName, ProbeSpec } from './probes.ts';

export interface ProbeResult {
  probe: ProbeName;
  database: string;
  ok: boolean;
  /** The measured time; the timeout itself when the probe timed out. */
  seconds: number;
  /** When the run finished (ISO 8601). */
  at: string;
  reason?: FailureReason;
  error?: string;
  detail?: Record<string, unknown>;
}

export interface ProbeSchedulerOptions {
  probes: readonly ProbeSpec[];
  recorder: Recorder;
  /** node-cron expression. */
  schedule: string;
  timeoutMs: number;
  jitterMs: number;
  logger?: Logger;
  /** Every probe runs through the credentials gate, so none logs in with credentials Neo4j refused. */
  credentials?: Pick<CredentialsGate, 'run'>;
  /** Called after every run with that run's results (pool sizing, alert inputs). */
  afterRun?: (results: readonly ProbeResult[]) => void;
}

export interface ProbeReadiness {
  ok: boolean;
  detail?: string;
}

/** Resolves when `work` settles or after `ms`, whichever comes first. */
function settledWithin(work: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    work.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      () => {
        clearTimeout(timer);
        resolve();
      },
    );
  });
}

function resultKey(probe: ProbeName, database: string): string {
  return database ? `${probe}:${database}` : probe;
}

export class ProbeScheduler {
  private task: ScheduledTask | undefined;
  private inFlight: Promise<ProbeResult[]> | undefined;
  private runs = 0;
  private readonly latest = new Map<string, ProbeResult>();
  private readonly startedAt = Date.now();

  constructor(private readonly options: ProbeSchedulerOptions) {
    const { recorder } = options;
    const failures = recorder.counter(probeMetrics.failures);
    const lastSuccess = recorder.gauge(probeMetrics.lastSuccess);
    const interval = recorder.gauge(probeMetrics.interval);
    const scheduleIntervalSeconds = longestScheduleIntervalMs(options.schedule) / 1000;
    for (const spec of options.probes) {
      // What "not succeeded for a while" is measured against: a probe on every 20th run is not late after one.
      interval.set({ probe: spec.probe, database: spec.database }, scheduleIntervalSeconds * spec.everyRuns);
      // Every reason exists from the start at 0, so increase() sees the first failure.
      for (const reason of FAILURE_REASONS) failures.bind({ probe: spec.probe, database: spec.database, reason });
      // Until a first success, "time since last success" counts from start-up, not from 1970.
      lastSuccess.set({ probe: spec.probe, database: spec.database }, this.startedAt / 1000);
    }
  }

  /** Starts the schedule and a first run right away, so readiness does not wait for the first tick. */
  start(): void {
    if (this.task) return;
    const log = this.options.logger?.child({ component: 'probes' });
    this.task = cron.createTask(this.options.schedule, () => this.runOnce(), {
      name: 'neo4j-pool-sidecar-probes',
      noOverlap: true,
      maxRandomDelay: this.options.jitterMs,
      logger: {
        info: (message) => log?.debug(message),
        warn: (message) => log?.warn(message),
        error: (message) => log?.error(String(message)),
        debug: (message) => log?.debug(String(message)),
      },
    });
    void this.task.start();
    void this.runOnce();
  }

  async stop(): Promise<void> {
    const task = this.task;
    this.task = undefined;
    if (task) await task.destroy();
    await this.inFlight;
  }

  /** Runs every due probe now; joins the run in flight instead of starting a second one. */
  runOnce(): Promise<ProbeResult[]> {
    this.inFlight ??= this.run().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /** The last result of every probe that has run. */
  results(): ProbeResult[] {
    return [...this.latest.values()];
  }

  result(probe: ProbeName, database: string): ProbeResult | undefined {
    return this.latest.get(resultKey(probe, database));
  }

  get completedRuns(): number {
    return this.runs;
  }

  readiness(): ProbeReadiness {
    const gating = this.options.probes.filter((spec) => spec.gatesReadiness);
    if (gating.length === 0) return { ok: true, detail: 'no probe gates readiness' };
    const results = gating.map((spec) => this.latest.get(resultKey(spec.probe, spec.database)));
    if (results.some((result) => result === undefined)) return { ok: false, detail: 'probes have not run yet' };
    const failing = results.filter((result): result is ProbeResult => result !== undefined && !result.ok);
    if (failing.length === 0) return { ok: true };
    return {
      ok: false,
      detail: failing
        .map((result) => `${resultKey(result.probe, result.database)} ${result.reason}: ${result.error}`)
        .join('; '),
    };
  }

  private async run(): Promise<ProbeResult[]> {
    const runIndex = this.runs;
    const due = this.options.probes.filter((spec) => runIndex % spec.everyRuns === 0);
    const phase = (spec: ProbeSpec) => spec.phase ?? 'main';
    const leads = due.filter((spec) => phase(spec) === 'lead').map((spec) => this.runProbe(spec));
    if (leads.length > 0) await settledWithin(Promise.all(leads), LEAD_HEAD_START_MS);
    const mains = due.filter((spec) => phase(spec) === 'main').map((spec) => this.runProbe(spec));
    const first = await Promise.all([...leads, ...mains]);
    const then = await Promise.all(due.filter((spec) => phase(spec) === 'last').map((spec) => this.runProbe(spec)));
    const results = [...first, ...then];
    this.runs++;
    try {
      this.options.afterRun?.(results);
    } catch (error) {
      this.options.logger?.warn({ component: 'probes', err: error }, 'after-run hook failed');
    }
    return results;
  }

  private async runProbe(spec: ProbeSpec): Promise<ProbeResult> {
    const { recorder, timeoutMs } = this.options;
    const labels = { probe: spec.probe, database: spec.database };
    const started = performance.now();
    let result: ProbeResult;
    try {
      // A probe that outlives its timeout still frees its own resources (each one cleans up in finally).
      const gate = this.options.credentials;
      const success = await withTimeout(gate ? gate.run(() => spec.run()) : spec.run(), timeoutMs);
      const seconds = success.seconds ?? (performance.now() - started) / 1000;
      result = {
        ...labels,
        ok: true,
        seconds,
        at: new Date().toISOString(),
        ...(success.detail ? { detail: success.detail } : {}),
      };
      recorder.gauge(probeMetrics.lastSuccess).set(labels, Date.now() / 1000);
    } catch (error) {
      const reason = classifyFailure(error);
      result = {
        ...labels,
        ok: false,
        seconds:
          reason === 'timeout'
            ? Math.min(timeoutMs / 1000, (performance.now() - started) / 1000)
            : (performance.now() - started) / 1000,
        at: new Date().toISOString(),
        reason,
        error: describeFailure(error),
      };
      recorder.counter(probeMetrics.failures).inc({ ...labels, reason });
    }
    recorder.gauge(probeMetrics.duration).set(labels, result.seconds);
    recorder.gauge(probeMetrics.up).set(labels, result.ok ? 1 : 0);
    this.logTransition(this.latest.get(resultKey(spec.probe, spec.database)), result);
    this.latest.set(resultKey(spec.probe, spec.database), result);
    return result;
  }

  /** One line when a probe starts failing (or changes reason) and one when it recovers, not one per run. */
  private logTransition(previous: ProbeResult | undefined, current: ProbeResult): void {
    const logger = this.options.logger;
    if (!logger) return;
    const fields = { component: 'probes', probe: current.probe, database: current.database || undefined };
    if (!current.ok && (previous === undefined || previous.ok || previous.reason !== current.reason)) {
      logger.warn({ ...fields, reason: current.reason, err: current.error }, `probe ${current.probe} failing`);
    } else if (current.ok && previous && !previous.ok) {
      logger.info({ ...fields, seconds: current.seconds }, `probe ${current.probe} recovered`);
    }
  }
}
