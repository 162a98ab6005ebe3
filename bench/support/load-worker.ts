/**
 * Drives a load worker in another language over JSON lines: bench/python/load_worker.py (the
 * official Python driver, from the scenario client's venv, scripts/clients/python.ts) and
 * bench/go (the official Go driver v5, built into .cache by go-client.ts). Both speak the same
 * requests, so one long-lived process keeps its drivers (and their warm pools) across rounds.
 */
import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ensurePythonClient } from '../../scripts/clients/python.ts';
import type { RoundResult } from './compare.ts';
import { ensureGoLoadWorker } from './go-client.ts';
import type { Credentials, QueryShape, Workload } from './workloads.ts';

const pythonScript = join(dirname(fileURLToPath(import.meta.url)), '..', 'python', 'load_worker.py');

interface WorkerAnswer {
  error?: string;
}

function isRoundResult(value: unknown): value is RoundResult {
  const candidate = value as Partial<RoundResult> | undefined;
  return (
    typeof candidate?.queries === 'number' &&
    typeof candidate.errors === 'number' &&
    typeof candidate.seconds === 'number' &&
    Array.isArray(candidate.latenciesMs)
  );
}

export class LoadWorker {
  private readonly lines: AsyncIterator<string>;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    reader: Interface,
    /** The language runtime, e.g. `Python 3.11.7` or `go1.26.8`. */
    readonly runtimeVersion: string,
    private stderr: { text: string },
  ) {
    this.lines = reader[Symbol.asyncIterator]();
  }

  private static spawn(command: string, args: string[], runtimeVersion: string): LoadWorker {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const stderr = { text: '' };
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr.text = (stderr.text + chunk).slice(-4000);
    });
    return new LoadWorker(child, createInterface({ input: child.stdout }), runtimeVersion, stderr);
  }

  static async python(log: (line: string) => void = () => {}): Promise<LoadWorker> {
    const python = await ensurePythonClient({ log });
    const { stdout } = await promisify(execFile)(python, ['--version']);
    return LoadWorker.spawn(python, ['-u', pythonScript], stdout.trim());
  }

  static async go(log: (line: string) => void = () => {}): Promise<LoadWorker> {
    const { binary, goVersion } = await ensureGoLoadWorker(log);
    return LoadWorker.spawn(binary, [], goVersion);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private async request(message: Record<string, unknown>): Promise<unknown> {
    this.child.stdin.write(`${JSON.stringify(message)}\n`);
    const next = await this.lines.next();
    if (next.done) throw new Error(`the load worker exited: ${this.stderr.text.trim()}`);
    const answer = JSON.parse(next.value) as WorkerAnswer;
    if (answer.error) throw new Error(`load worker: ${answer.error}`);
    return answer;
  }

  /** Opens a named driver (verified connected) and answers the driver's version. */
  async openDriver(name: string, uri: string, credentials: Credentials): Promise<string> {
    const answer = (await this.request({ op: 'open', name, uri, ...credentials })) as { driverVersion?: string };
    return answer.driverVersion ?? 'unknown';
  }

  async load(
    name: string,
    workload: Workload,
    concurrency: number,
    seconds: number,
    shape: QueryShape = 'executeQuery',
  ): Promise<RoundResult> {
    const answer = await this.request({
      op: 'load',
      name,
      cypher: workload.cypher,
      rows: workload.rows,
      concurrency,
      seconds,
      shape,
    });
    if (!isRoundResult(answer)) throw new Error(`unexpected answer from the load worker`);
    return answer;
  }

  /** Sequential samples of a brand-new driver's connect plus first query, then close. */
  async freshDriver(
    uri: string,
    credentials: Credentials,
    seconds: number,
    maxSamples: number,
    shape: QueryShape = 'executeQuery',
  ): Promise<RoundResult> {
    const answer = await this.request({ op: 'fresh_driver', uri, ...credentials, seconds, maxSamples, shape });
    if (!isRoundResult(answer)) throw new Error(`unexpected answer from the load worker`);
    return answer;
  }

  async close(): Promise<void> {
    try {
      await this.request({ op: 'close' });
    } finally {
      this.child.stdin.end();
      await new Promise<void>((resolveExit) => {
        if (this.child.exitCode !== null) resolveExit();
        else this.child.once('exit', () => resolveExit());
      });
    }
  }
}
