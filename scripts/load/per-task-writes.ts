/**
 * The load that Neo4j restarts are judged by: per-task workers, each task a new driver, one write
 * (`CREATE (:PerTaskWrite {run, id})`) and the driver closed, as many Celery and BullMQ tasks are
 * written. Auto-commit `session.run` is never retried by a driver; `executeQuery` is retried for 30 s.
 * Every task has its own id, so what Neo4j committed can be held against what the workers were told:
 * an acknowledged write missing is a lost write, an id committed twice a replayed one.
 * JavaScript workers run in this process; Python workers in a child (test/clients/python/per_task_writes.py).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import neo4j, { type Driver } from 'neo4j-driver';
import { ensurePythonClient, pythonClientDir } from '../clients/python.ts';

export type TaskShape = 'session.run' | 'executeQuery';

export interface TaskRecord {
  readonly id: number;
  readonly outcome: 'acknowledged' | 'failed';
  /** Neo4j's status code, or the error's name when there is none (ServiceUnavailable, ...). */
  readonly code: string | null;
  readonly startedAtMs: number;
  readonly endedAtMs: number;
}

export interface PerTaskWriteOptions {
  readonly uri: string;
  readonly username: string;
  readonly password: string;
  /** Marks this load's nodes apart from any other's. */
  readonly runId: string;
  readonly workers: number;
  readonly shape: TaskShape;
  /** Ids start here: give concurrent loads of one run disjoint ranges. */
  readonly firstId?: number;
}

export interface RunningLoad {
  /** Tasks finished so far. */
  readonly finished: () => number;
  /** Lets running tasks finish, starts no more; resolves with every task's record. */
  stop(): Promise<TaskRecord[]>;
}

const QUERY = 'CREATE (:PerTaskWrite {run: $run, id: $id})';
const QUIET = { logging: { level: 'error' as const, logger: () => {} } };

/** JavaScript per-task workers with the driver's defaults, as a user writes them. */
export function startJsLoad(options: PerTaskWriteOptions): RunningLoad {
  const records: TaskRecord[] = [];
  let nextId = options.firstId ?? 0;
  let running = true;
  const task = async (id: number) => {
    const driver = neo4j.driver(options.uri, neo4j.auth.basic(options.username, options.password), {
      ...QUIET,
      maxConnectionPoolSize: 1,
      userAgent: 'per-task-writes/js',
    });
    try {
      if (options.shape === 'executeQuery') await driver.executeQuery(QUERY, { run: options.runId, id });
      else {
        const session = driver.session();
        try {
          await session.run(QUERY, { run: options.runId, id });
        } finally {
          await session.close();
        }
      }
    } finally {
      await driver.close();
    }
  };
  const worker = async () => {
    while (running) {
      const id = nextId++;
      const startedAtMs = Date.now();
      try {
        await task(id);
        records.push({ id, outcome: 'acknowledged', code: null, startedAtMs, endedAtMs: Date.now() });
      } catch (error) {
        const code = (error as { code?: string }).code;
        records.push({
          id,
          outcome: 'failed',
          code: code && code !== 'N/A' ? code : ((error as Error).name ?? 'Error'),
          startedAtMs,
          endedAtMs: Date.now(),
        });
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  };
  const done = Promise.all(Array.from({ length: options.workers }, () => worker()));
  return {
    finished: () => records.length,
    async stop() {
      running = false;
      await done;
      return records;
    },
  };
}

/** Python per-task workers (the official driver, 5.x line) in a child process. */
export async function startPythonLoad(options: PerTaskWriteOptions): Promise<RunningLoad> {
  const python = await ensurePythonClient();
  const folder = mkdtempSync(join(tmpdir(), 'per-task-writes-'));
  const stopFile = join(folder, 'stop');
  const child = spawn(python, [join(pythonClientDir, 'per_task_writes.py')], {
    env: {
      PATH: process.env.PATH ?? '',
      NEO4J_URI: options.uri,
      NEO4J_USERNAME: options.username,
      NEO4J_PASSWORD: options.password,
      RUN_ID: options.runId,
      WORKERS: String(options.workers),
      SHAPE: options.shape === 'executeQuery' ? 'execute_query' : 'run',
      STOP_FILE: stopFile,
      FIRST_ID: String(options.firstId ?? 0),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return {
    finished: () => Number.NaN,
    async stop() {
      writeFileSync(stopFile, '');
      const code = await exited;
      rmSync(folder, { recursive: true, force: true });
      if (code !== 0) throw new Error(`the Python workers exited with ${code}: ${stderr}`);
      return JSON.parse(stdout.trim().split('\n').at(-1) ?? '[]') as TaskRecord[];
    },
  };
}

/** How many times Neo4j holds each id of `runId`. */
export async function committedIds(observer: Driver, runId: string): Promise<Map<number, number>> {
  const { records } = await observer.executeQuery(
    'MATCH (task:PerTaskWrite {run: $run}) RETURN task.id AS id, count(*) AS copies',
    { run: runId },
  );
  return new Map(records.map((record) => [Number(record.get('id')), Number(record.get('copies'))]));
}

export interface LoadVerdict {
  readonly tasks: number;
  readonly failed: number;
  readonly acknowledged: number;
  /** Acknowledged to the worker but not in Neo4j. */
  readonly lost: number;
  /** Ids Neo4j holds more than once. */
  readonly duplicated: number;
  /** Failed tasks whose write Neo4j nevertheless holds (it ran; the answer was lost). */
  readonly failedButCommitted: number;
  readonly longestTaskMs: number;
  /** Failures by code, most first. */
  readonly failuresByCode: ReadonlyArray<readonly [string, number]>;
}

export function judge(records: readonly TaskRecord[], committed: ReadonlyMap<number, number>): LoadVerdict {
  const codes = new Map<string, number>();
  let failed = 0;
  let lost = 0;
  let failedButCommitted = 0;
  let longestTaskMs = 0;
  for (const record of records) {
    longestTaskMs = Math.max(longestTaskMs, record.endedAtMs - record.startedAtMs);
    if (record.outcome === 'acknowledged') {
      if (!committed.has(record.id)) lost++;
      continue;
    }
    failed++;
    if (committed.has(record.id)) failedButCommitted++;
    const code = record.code ?? 'unknown';
    codes.set(code, (codes.get(code) ?? 0) + 1);
  }
  return {
    tasks: records.length,
    failed,
    acknowledged: records.length - failed,
    lost,
    duplicated: [...committed.values()].filter((copies) => copies > 1).length,
    failedButCommitted,
    longestTaskMs,
    failuresByCode: [...codes.entries()].sort((a, b) => b[1] - a[1]),
  };
}

/** Tasks that had started and not ended at `atMs`: the most a crash at that moment can fail. */
export function inFlightAt(records: readonly TaskRecord[], atMs: number): number {
  return records.filter((record) => record.startedAtMs <= atMs && record.endedAtMs >= atMs).length;
}
