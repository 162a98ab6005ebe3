/**
 * The Go load worker (bench/go: the official Neo4j Go driver v5 from the Go module proxy), built once
 * into .cache/bench-go/ by the same cached `go build` as the Go scenario client (scripts/clients/go.ts).
 * Needs `go` on PATH (1.22+).
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ensureGoBuild } from '../../scripts/clients/go.ts';
import { repoRoot } from '../../scripts/neo4j/local-neo4j.ts';

/** Builds the worker if needed and returns its path and the Go toolchain that built it. */
export async function ensureGoLoadWorker(
  log: (line: string) => void = () => {},
): Promise<{ binary: string; goVersion: string }> {
  const { stdout } = await promisify(execFile)('go', ['env', 'GOVERSION']);
  const binary = await ensureGoBuild({
    sourceDir: join(dirname(fileURLToPath(import.meta.url)), '..', 'go'),
    cacheRoot: join(repoRoot, '.cache', 'bench-go'),
    binaryName: 'load-worker',
    log,
  });
  return { binary, goVersion: stdout.trim() };
}
