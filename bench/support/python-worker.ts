/**
 * Drives bench/python/load_worker.py: one long-lived Python process with the official driver from
 * the scenario client's venv (scripts/clients/python.ts), asked for rounds over JSON lines.
 */
import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ensurePythonClient } from '../../scripts/clients/python.ts';
import type { RoundResult } from './compare.ts';
import type { Credentials, Workload } from './workloads.ts';

const workerScript = join(dirname(fileURLToPath(import.meta.url)), '..', 'python', 'load_worker.py');

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

export class PythonLoadWorker {
  private readonly lines: AsyncIterator<string>;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    reader: Interface,
    readonly pythonVersion: string,
    private stderr: { text: string },
  ) {
    this.lines = reader[Symbol.asyncIterator]();
  }

  static async start(log: (line: string) => void = () => {}): Promise<PythonLoadWorker> {
    const python = await ensurePythonClient({ log });
    const { stdout } = await promisify(execFile)(python, ['--version']);
    const child = spawn(python, ['-u', workerScript], { stdio: ['pipe', 'pipe', 'pipe'] });
    const stderr = { text: '' };
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr.text = (stderr.text + chunk).slice(-4000);
    });
    const reader = createInterface({ input: child.stdout });
    return new PythonLoadWorker(child, reader, stdout.trim(), stderr);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private async request(message: Record<string, unknown>): Promise<unknown> {
    this.child.stdin.write(`${JSON.stringify(message)}\n`);
    const next = await this.lines.next();
    if (next.done) throw new Error(`the Python load worker exited: ${this.stderr.text.trim()}`);
    const answer = JSON.parse(next.value) as WorkerAnswer;
    if (answer.error) throw new Error(`Python load worker: ${answer.error}`);
    return answer;
  }

  async openDriver(name: string, uri: string, credentials: Credentials): Promise<string> {
    const answer = (await this.request({ op: 'open', name, uri, ...credentials })) as { driverVersion?: string };
    return answer.driverVersion ?? 'unknown';
  }

  async load(name: string, workload: Workload, concurrency: number, seconds: number): Promise<RoundResult> {
    const answer = await this.request({
      op: 'load',
      name,
      cypher: workload.cypher,
      rows: workload.rows,
      concurrency,
      seconds,
    });
    if (!isRoundResult(answer)) throw new Error(`unexpected answer from the Python load worker`);
    return answer;
  }

  /** Sequential samples of a brand-new driver's connect plus first query, then close. */
  async freshDriver(uri: string, credentials: Credentials, seconds: number, maxSamples: number): Promise<RoundResult> {
    const answer = await this.request({ op: 'fresh_driver', uri, ...credentials, seconds, maxSamples });
    if (!isRoundResult(answer)) throw new Error(`unexpected answer from the Python load worker`);
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
