/**
 * promtool for the alert-rule tests: found on PATH, or installed once from Debian's `prometheus`
 * package (which ships it), since the tests must run on a fresh machine and in CI alike.
 *
 * Installing needs root and Debian's package lists; the install waits for a dpkg lock held by another
 * test file instead of failing.
 */
import { execFile } from 'node:child_process';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { isExecutable } from './common.ts';

const execFileAsync = promisify(execFile);

const APT_ENV = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
const APT_LOCK_WAIT = ['-o', 'DPkg::Lock::Timeout=300'];
const INSTALL_ATTEMPTS: readonly (readonly string[])[] = [
  ['install', '-y', '--no-install-recommends', ...APT_LOCK_WAIT, 'prometheus'],
  ['install', '-y', ...APT_LOCK_WAIT, 'prometheus'],
];

/** promtool on PATH (or where Debian puts it), if any. */
export function findPromtool(): string | undefined {
  const directories = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/bin', '/usr/local/bin'];
  for (const directory of directories) {
    const candidate = join(directory, 'promtool');
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

let ensured: Promise<string> | undefined;

/** The path of promtool, installing Debian's `prometheus` package the first time it is missing. */
export function ensurePromtool(log: (line: string) => void = () => {}): Promise<string> {
  ensured ??= (async () => {
    const found = findPromtool();
    if (found) return found;
    log('promtool not found; installing Debian package prometheus (ships promtool)...');
    const failures: string[] = [];
    try {
      await execFileAsync('apt-get', ['update', ...APT_LOCK_WAIT], { env: APT_ENV, maxBuffer: 64 * 1024 * 1024 });
    } catch (error) {
      failures.push(`apt-get update: ${(error as Error).message.split('\n', 1)[0]}`);
    }
    for (const args of INSTALL_ATTEMPTS) {
      try {
        await execFileAsync('apt-get', [...args], { env: APT_ENV, maxBuffer: 64 * 1024 * 1024 });
      } catch (error) {
        failures.push(`apt-get ${args.join(' ')}: ${(error as Error).message.split('\n', 1)[0]}`);
        continue;
      }
      const installed = findPromtool();
      if (installed) return installed;
    }
    throw new Error(`could not install promtool (needs root and Debian's package lists):\n${failures.join('\n')}`);
  })();
  ensured.catch(() => {
    ensured = undefined;
  });
  return ensured;
}

export interface PromtoolRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs promtool with arguments; resolves with its exit code and output whatever the code. */
export async function runPromtool(args: readonly string[], cwd?: string): Promise<PromtoolRun> {
  const promtool = await ensurePromtool();
  try {
    const { stdout, stderr } = await execFileAsync(promtool, [...args], { cwd, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof failed.code === 'number' ? failed.code : 1,
      stdout: failed.stdout ?? '',
      stderr: failed.stderr ?? '',
    };
  }
}
