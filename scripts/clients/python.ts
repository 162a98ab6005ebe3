/**
 * The official Neo4j Python driver in a private venv, for tests that need a non-JS client.
 *
 * The venv lives in .cache/venv-python (5.x line) or .cache/venv-python-6 (6.x line) and is rebuilt
 * only when its pinned requirements file changes: a marker in the venv records the hash of the
 * requirements it was installed from.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../neo4j/local-neo4j.ts';
import { withCacheLock } from './cache-lock.ts';

const execFileAsync = promisify(execFile);

export const pythonClientDir = join(repoRoot, 'test', 'clients', 'python');
export const pythonScenarioScript = join(pythonClientDir, 'scenario.py');

/** Driver lines with a pinned requirements file; '5' is what most applications run today. */
export type PythonDriverLine = '5' | '6';

const requirementsFiles: Record<PythonDriverLine, string> = {
  '5': join(pythonClientDir, 'requirements.txt'),
  '6': join(pythonClientDir, 'requirements-6.txt'),
};

const venvDirs: Record<PythonDriverLine, string> = {
  '5': join(repoRoot, '.cache', 'venv-python'),
  '6': join(repoRoot, '.cache', 'venv-python-6'),
};

export interface PythonClientOptions {
  driverLine?: PythonDriverLine;
  /** Interpreter that creates the venv; PYTHON, else `python3` on PATH. Needs 3.10+ for the 6.x driver. */
  basePython?: string;
  log?: (line: string) => void;
}

/** Creates the venv and installs the pinned driver once; returns the venv's python executable. */
export async function ensurePythonClient(options: PythonClientOptions = {}): Promise<string> {
  const driverLine = options.driverLine ?? '5';
  const log = options.log ?? (() => {});
  const requirementsFile = requirementsFiles[driverLine];
  const venvDir = venvDirs[driverLine];
  const python = join(venvDir, 'bin', 'python');
  const marker = join(venvDir, '.installed-requirements-sha256');
  const requirementsHash = createHash('sha256')
    .update(await readFile(requirementsFile))
    .digest('hex');

  const isCurrent = async (): Promise<boolean> =>
    existsSync(python) && existsSync(marker) && (await readFile(marker, 'utf8')).trim() === requirementsHash;

  if (await isCurrent()) return python;
  return withCacheLock(`${venvDir}.lock`, async () => {
    if (await isCurrent()) return python;
    log(`creating ${venvDir} with ${requirementsFile} (first run only)...`);
    // Rebuilt from scratch so a changed pin never leaves an old package behind.
    await rm(venvDir, { recursive: true, force: true });
    const basePython = options.basePython ?? process.env.PYTHON ?? 'python3';
    await execFileAsync(basePython, ['-m', 'venv', venvDir]);
    await execFileAsync(
      python,
      ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-input', '-r', requirementsFile],
      { maxBuffer: 16 * 1024 * 1024 },
    );
    await writeFile(marker, `${requirementsHash}\n`);
    return python;
  });
}
