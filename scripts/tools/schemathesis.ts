/**
 * schemathesis (PyPI), the OpenAPI fuzzer that test/reliability/http-fuzz.test.ts runs against the
 * sidecar's own /openapi.json, in a private venv: .cache/venv-schemathesis, built from the pinned
 * scripts/tools/schemathesis/requirements.txt and rebuilt only when that file changes.
 */
import { join } from 'node:path';
import { ensureVenv } from '../clients/venv.ts';
import { repoRoot } from '../neo4j/local-neo4j.ts';

const requirementsFile = join(repoRoot, 'scripts', 'tools', 'schemathesis', 'requirements.txt');
const venvDir = join(repoRoot, '.cache', 'venv-schemathesis');

/** Installs schemathesis once; returns its command-line executable. */
export async function ensureSchemathesis(options: { basePython?: string; log?: (line: string) => void } = {}) {
  await ensureVenv({ dir: venvDir, requirementsFile, ...options });
  return join(venvDir, 'bin', 'schemathesis');
}
