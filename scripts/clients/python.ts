/**
 * The official Neo4j Python driver in a private venv, for tests that need a non-JS client.
 *
 * The venv lives in .cache/venv-python (5.x line), .cache/venv-python-6 (6.x line) or
 * .cache/venv-python-4.4 (4.4 line) and is rebuilt only when its pinned requirements file changes: a
 * marker in the venv records the hash of the requirements it was installed from.
 */
import { join } from 'node:path';
import { repoRoot } from '../neo4j/local-neo4j.ts';
import { ensureVenv } from './venv.ts';

export const pythonClientDir = join(repoRoot, 'test', 'clients', 'python');
export const pythonScenarioScript = join(pythonClientDir, 'scenario.py');

/**
 * Driver lines with a pinned requirements file; '5' is what most applications run today, '4.4' the
 * last line before Bolt 5 (its login rides in HELLO, there is no LOGON).
 */
export type PythonDriverLine = '4.4' | '5' | '6';

const requirementsFiles: Record<PythonDriverLine, string> = {
  '5': join(pythonClientDir, 'requirements.txt'),
  '6': join(pythonClientDir, 'requirements-6.txt'),
  '4.4': join(pythonClientDir, 'requirements-4.4.txt'),
};

const venvDirs: Record<PythonDriverLine, string> = {
  '5': join(repoRoot, '.cache', 'venv-python'),
  '6': join(repoRoot, '.cache', 'venv-python-6'),
  '4.4': join(repoRoot, '.cache', 'venv-python-4.4'),
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
  return ensureVenv({
    dir: venvDirs[driverLine],
    requirementsFile: requirementsFiles[driverLine],
    basePython: options.basePython,
    log: options.log,
  });
}
