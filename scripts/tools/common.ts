/**
 * Shared plumbing of the tool installers: where tools live (.cache/tools, git-ignored), running
 * an installer command with its output kept for the error message, and a cross-process lock so
 * that test files running in parallel do not install the same tool twice at once.
 */
import { type ExecFileOptions, execFile } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../neo4j/local-neo4j.ts';
import { withCacheLock } from './cache-lock.ts';

const execFileAsync = promisify(execFile);

export const toolsRoot = join(repoRoot, '.cache', 'tools');
export const toolsBin = join(toolsRoot, 'bin');

export type ProgressLog = (line: string) => void;

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command; on failure the error names the command and carries the end of its output. */
export async function run(
  command: string,
  args: readonly string[],
  options: ExecFileOptions & { timeoutMs?: number } = {},
): Promise<RunResult> {
  try {
    const { stdout, stderr } = await execFileAsync(command, [...args], {
      maxBuffer: 64 * 1024 * 1024,
      timeout: options.timeoutMs ?? 0,
      ...options,
      encoding: 'utf8',
    });
    return { stdout: String(stdout), stderr: String(stderr) };
  } catch (error) {
    const failure = error as Error & { stdout?: string; stderr?: string; code?: number | string };
    const tail = `${failure.stderr ?? ''}\n${failure.stdout ?? ''}`.trim().slice(-4000);
    throw new Error(`${command} ${args.join(' ')} failed (${failure.code ?? 'no exit code'}):\n${tail}`, {
      cause: error,
    });
  }
}

/** Whether `path` exists and this process may run it. */
export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The absolute path of an executable on PATH, or undefined. */
export async function whichExecutable(name: string, path = process.env.PATH ?? ''): Promise<string | undefined> {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/**
 * Runs `work` while holding a lock directory under .cache/tools/locks. A lock whose owner process
 * has died is taken over, so a killed install does not wedge every later run.
 */
export function withToolLock<T>(name: string, work: () => Promise<T>, waitMs = 30 * 60_000): Promise<T> {
  return withCacheLock(join(toolsRoot, 'locks', `${name}.lock`), work, waitMs);
}

/** A marker file records which version a cached binary was built from, since `go install` binaries cannot always say. */
export async function cachedVersion(markerName: string): Promise<string | undefined> {
  const marker = join(toolsBin, `.${markerName}.version`);
  if (!existsSync(marker)) return undefined;
  return (await readFile(marker, 'utf8')).trim();
}

export async function recordVersion(markerName: string, version: string): Promise<void> {
  await mkdir(toolsBin, { recursive: true });
  await writeFile(join(toolsBin, `.${markerName}.version`), `${version}\n`);
}

/**
 * `go install <module>@<version>` with GOBIN in .cache/tools/bin. The module and build caches stay
 * Go's defaults (shared by every checkout on the machine), so a fresh clone rebuilds in seconds.
 */
export async function goInstall(
  binaryName: string,
  modulePath: string,
  version: string,
  log: ProgressLog,
): Promise<string> {
  const binary = join(toolsBin, binaryName);
  if (existsSync(binary) && (await cachedVersion(binaryName)) === version) return binary;
  return withToolLock(binaryName, async () => {
    if (existsSync(binary) && (await cachedVersion(binaryName)) === version) return binary;
    const go = await whichExecutable('go');
    if (!go) throw new Error(`installing ${binaryName} needs the Go toolchain (go) on PATH`);
    await mkdir(toolsBin, { recursive: true });
    log(`go install ${modulePath}@${version} (first run on this machine only; can take minutes)...`);
    const started = Date.now();
    await run(go, ['install', `${modulePath}@${version}`], {
      cwd: toolsRoot,
      // An enclosing go.work must not change what gets built; without cgo the binary runs anywhere.
      env: { ...process.env, GOBIN: toolsBin, GOWORK: 'off', CGO_ENABLED: '0' },
    });
    await recordVersion(binaryName, version);
    log(`${binaryName} ${version} built in ${Math.round((Date.now() - started) / 1000)} s`);
    return binary;
  });
}
