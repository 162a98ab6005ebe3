/**
 * A Python venv under .cache built from one pinned requirements file, shared by every ensure*
 * function that needs Python packages (driver clients, the Celery example, schemathesis).
 *
 * A marker in the venv records the hash of the requirements it was installed from, so the venv is
 * rebuilt exactly when that file changes; the build holds a cross-process lock because node:test
 * runs test files in parallel and two of them may find the cache cold at once.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withCacheLock } from '../tools/cache-lock.ts';
import { run } from '../tools/common.ts';

export interface EnsureVenvOptions {
  /** The venv's directory, e.g. .cache/venv-python. */
  dir: string;
  /** Pinned requirements; a change to this file rebuilds the venv. */
  requirementsFile: string;
  /** Interpreter that creates the venv; PYTHON, else `python3` on PATH. */
  basePython?: string;
  log?: (line: string) => void;
}

/** Creates the venv and installs the pinned requirements once; returns the venv's python executable. */
export async function ensureVenv(options: EnsureVenvOptions): Promise<string> {
  const { dir, requirementsFile } = options;
  const python = join(dir, 'bin', 'python');
  const marker = join(dir, '.installed-requirements-sha256');
  const requirementsHash = createHash('sha256')
    .update(await readFile(requirementsFile))
    .digest('hex');
  const isCurrent = async (): Promise<boolean> =>
    existsSync(python) && existsSync(marker) && (await readFile(marker, 'utf8')).trim() === requirementsHash;

  if (await isCurrent()) return python;
  return withCacheLock(`${dir}.lock`, async () => {
    if (await isCurrent()) return python;
    options.log?.(`creating ${dir} from ${requirementsFile} (first run only)...`);
    // From scratch, so a changed pin never leaves an old package behind.
    await rm(dir, { recursive: true, force: true });
    await run(options.basePython ?? process.env.PYTHON ?? 'python3', ['-m', 'venv', dir]);
    await run(python, [
      '-m',
      'pip',
      'install',
      '--quiet',
      '--disable-pip-version-check',
      '--no-input',
      '-r',
      requirementsFile,
    ]);
    // Written last: a build killed half way leaves no marker and is redone on the next call.
    await writeFile(marker, `${requirementsHash}\n`);
    return python;
  });
}
