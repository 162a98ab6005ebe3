/**
 * The `probes` section: what the sidecar measures on its own schedule against Neo4j, and how pool
 * sizing advice is derived. The schedule is a node-cron expression (six fields with seconds).
 */
import cron from 'node-cron';
import { z } from 'zod';

const SCHEDULE_SAMPLE_RUNS = 120;

/** How long the other probes of a run wait for the acquisition probe before starting anyway. */
export const LEAD_HEAD_START_MS = 200;

/**
 * The gaps between the next runs of a cron expression, in milliseconds, found by listing those runs:
 * cron fields are too irregular (lists, ranges, steps) for a closed formula.
 */
function scheduleGapsMs(expression: string): number[] {
  const task = cron.createTask(expression, () => {});
  try {
    const runs = task.getNextRuns(SCHEDULE_SAMPLE_RUNS).map((date) => date.getTime());
    return runs.slice(1).map((run, i) => run - runs[i]!);
  } finally {
    void task.destroy();
  }
}

/** The shortest gap between two runs of a cron expression, in milliseconds. */
export function shortestScheduleIntervalMs(expression: string): number {
  return Math.min(...scheduleGapsMs(expression));
}

/**
 * The longest gap between two runs of a cron expression, in milliseconds: how long a probe on this
 * schedule may go without running while nothing is wrong (times its everyRuns).
 */
export function longestScheduleIntervalMs(expression: string): number {
  return Math.max(...scheduleGapsMs(expression));
}

const everyRuns = (fallback: number) =>
  z
    .number()
    .int()
    .min(1)
    .max(10000)
    .default(fallback)
    .describe('Run this probe on every Nth scheduled run only (1: every run).');

const gatesReadiness = (fallback: boolean) =>
  z.boolean().default(fallback).describe('A failure of this probe in its last run makes /readyz answer 503.');

export const probesSection = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Run the probes (and pool sizing advice) on the schedule below.'),
    schedule: z
      .string()
      .refine((expression) => cron.validate(expression), { message: 'not a valid cron expression' })
      .default('*/15 * * * * *')
      .describe('node-cron expression, seconds first when six fields are given. Default: every 15 s.'),
    timeoutMs: z
      .number()
      .int()
      .min(10)
      .default(5000)
      .describe(
        'Each probe fails with reason `timeout` after this long. A run lasts at most 2 x timeoutMs + jitterMs + 200 ms (the census runs after the other probes), which must be shorter than the schedule interval.',
      ),
    jitterMs: z
      .number()
      .int()
      .min(0)
      .default(1000)
      .describe('Each run starts up to this long after its scheduled second, so replicas do not probe in lockstep.'),
    databases: z
      .array(z.string().min(1))
      .default([])
      .describe('Databases the acquisition and round-trip probes target; empty: the default database only.'),
    acquisition: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe(
            "Time taken to obtain a connection from the sidecar's own pool, exactly as a session does before its first message.",
          ),
        everyRuns: everyRuns(1),
        gatesReadiness: gatesReadiness(true),
      })
      .prefault({}),
    roundTrip: z
      .strictObject({
        enabled: z.boolean().default(true).describe('`RETURN 1` in an auto-commit transaction on a pooled connection.'),
        everyRuns: everyRuns(1),
        gatesReadiness: gatesReadiness(true),
      })
      .prefault({}),
    freshConnect: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe('A brand-new driver connecting and authenticating: the cost a per-task driver pays on every task.'),
        everyRuns: everyRuns(20),
        gatesReadiness: gatesReadiness(false),
      })
      .prefault({}),
    census: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe(
            'Server-side view: CALL dbms.listConnections() and SHOW TRANSACTIONS (admin user sees all), with no login per run. It describes the whole server: run it in one instance per fleet (the Helm chart does) and turn it off beside workers.',
          ),
        everyRuns: everyRuns(1),
        gatesReadiness: gatesReadiness(false),
        topClientHosts: z
          .number()
          .int()
          .min(1)
          .max(100)
          .default(10)
          .describe('Client hosts reported by name; the rest are summed as "other".'),
        longTransactionSeconds: z
          .number()
          .gt(0)
          .default(30)
          .describe('Transactions open longer than this are counted and listed in /status.'),
      })
      .prefault({}),
    sizing: z
      .strictObject({
        windowSeconds: z
          .number()
          .int()
          .min(30)
          .max(86400)
          .default(300)
          .describe('Acquisition rate and hold time are measured over this sliding window.'),
        logIntervalSeconds: z
          .number()
          .int()
          .min(60)
          .default(3600)
          .describe('A pool judged too small or oversized is logged at most this often.'),
        undersizedRatio: z
          .number()
          .gt(0)
          .max(1)
          .default(0.8)
          .describe('Too small when the connections needed reach this fraction of the pool size (or callers wait).'),
        oversizedRatio: z
          .number()
          .gt(0)
          .max(1)
          .default(0.25)
          .describe('Oversized when even the busiest moment used less than this fraction of the pool size.'),
      })
      .prefault({}),
  })
  .superRefine((probes, context) => {
    if (!cron.validate(probes.schedule)) return;
    const intervalMs = shortestScheduleIntervalMs(probes.schedule);
    // The census runs after the other probes, which give the acquisition probe a head start.
    const longestRunMs = 2 * probes.timeoutMs + probes.jitterMs + LEAD_HEAD_START_MS;
    if (longestRunMs >= intervalMs) {
      context.addIssue({
        code: 'custom',
        path: ['timeoutMs'],
        message: `2 x timeoutMs + jitterMs + ${LEAD_HEAD_START_MS} ms (${longestRunMs} ms) must be shorter than the schedule interval (${intervalMs} ms), or runs would overlap`,
      });
    }
  })
  .prefault({});

export type ProbesConfig = z.output<typeof probesSection>;
