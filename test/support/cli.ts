/**
 * The real CLI (src/cli.ts under tsx) as a child process: run once to completion, or started as
 * `run` on free ports and polled over HTTP until it answers.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { freePort, repoRoot } from '../../scripts/neo4j/local-neo4j.ts';

/** node's argv for the CLI with these arguments. */
export function cliArgv(args: readonly string[]): string[] {
  return ['--import', 'tsx', join(repoRoot, 'src', 'cli.ts'), ...args];
}

/** The CLI run to completion with only PATH and `env` in its environment. */
export function runSidecarCli(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, cliArgv(args), {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * runSidecarCli without blocking the caller's event loop: for a command that waits on what the test
 * itself does meanwhile (a pause that drains the test's own transaction), which spawnSync would deadlock.
 */
export function runSidecarCliAsync(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, cliArgv(args), {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Everything a child writes to stdout and stderr, interleaved as it arrives; `limit` keeps only the tail. */
export function collectOutput(child: ChildProcess, limit = Number.POSITIVE_INFINITY): () => string {
  let output = '';
  const collect = (chunk: string) => {
    output = Number.isFinite(limit) ? (output + chunk).slice(-limit) : output + chunk;
  };
  child.stdout?.setEncoding('utf8').on('data', collect);
  child.stderr?.setEncoding('utf8').on('data', collect);
  return () => output;
}

export interface PollHttpOptions {
  /** Which answer ends the wait (default: any answer at all). */
  accept?: (response: Response) => boolean;
  timeoutMs?: number;
  intervalMs?: number;
  /** Stop waiting once this process has exited. */
  process?: ChildProcess;
}

/** Requests `url` until an accepted answer comes; that answer, or undefined when none came in time. */
export async function pollHttp(url: string, options: PollHttpOptions = {}): Promise<Response | undefined> {
  const { accept = () => true, timeoutMs = 60_000, intervalMs = 200, process: child } = options;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && (child === undefined || child.exitCode === null)) {
    const response = await fetch(url).catch(() => undefined);
    if (response && accept(response)) return response;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  return undefined;
}

export interface SidecarCli {
  readonly child: ChildProcess;
  /** http://127.0.0.1:<port> of its metrics and health server. */
  readonly httpUrl: string;
  readonly httpPort: number;
  readonly proxyPort: number;
  /** Its exit code, once it has exited. */
  readonly exited: Promise<number | null>;
  /** stdout and stderr so far. */
  logs(): string;
  /** True once `path` answers 2xx, false when it did not within `timeoutMs`. */
  waitForOk(path: '/healthz' | '/readyz', timeoutMs?: number): Promise<boolean>;
  /** SIGKILL if it is still running; resolves once it has exited. */
  stop(): Promise<void>;
}

/**
 * `neo4j-pool-sidecar <args>` with its HTTP server and proxy on free ports, JSON logs, and only PATH
 * and `env` in its environment (so nothing of the test runner's leaks in).
 */
export async function spawnSidecarCli(args: string[], env: Record<string, string>): Promise<SidecarCli> {
  const [httpPort, proxyPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, cliArgv(args), {
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH ?? '',
      SIDECAR__HTTP__PORT: String(httpPort),
      SIDECAR__PROXY__PORT: String(proxyPort),
      SIDECAR__LOG__PRETTY: 'never',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs = collectOutput(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  return {
    child,
    httpUrl,
    httpPort,
    proxyPort,
    exited,
    logs,
    waitForOk: async (path, timeoutMs = 60_000) =>
      (await pollHttp(`${httpUrl}${path}`, { accept: (response) => response.ok, timeoutMs })) !== undefined,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
