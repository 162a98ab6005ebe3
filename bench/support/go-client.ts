/**
 * The Go load worker (bench/go: the official Neo4j Go driver v5 from the Go module proxy), built
 * once into .cache/bench-go/<key>/, where the key hashes go.mod, go.sum and the sources: editing any
 * of them rebuilds, nothing else does. Needs `go` on PATH (1.22+).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { withCacheLock } from '../../scripts/clients/cache-lock.ts';
import { repoRoot } from '../../scripts/neo4j/local-neo4j.ts';

const execFileAsync = promisify(execFile);
const sourceDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'go');
const cacheRoot = join(repoRoot, '.cache', 'bench-go');

async function buildKey(): Promise<string> {
  const hash = createHash('sha256');
  const files = (await readdir(sourceDir)).filter((name) => /\.go$|^go\.(mod|sum)$/.test(name)).sort();
  for (const name of files) {
    hash.update(`\0${name}\0`);
    hash.update(await readFile(join(sourceDir, name)));
  }
  return hash.digest('hex').slice(0, 16);
}

/** Builds the worker if needed and returns its path and the Go toolchain that built it. */
export async function ensureGoLoadWorker(
  log: (line: string) => void = () => {},
): Promise<{ binary: string; goVersion: string }> {
  const { stdout } = await execFileAsync('go', ['env', 'GOVERSION']);
  const goVersion = stdout.trim();
  const entryDir = join(cacheRoot, await buildKey());
  const binary = join(entryDir, 'load-worker');
  const marker = join(entryDir, '.complete');
  if (existsSync(marker)) return { binary, goVersion };
  return withCacheLock(`${entryDir}.lock`, async () => {
    if (existsSync(marker)) return { binary, goVersion };
    log(`building the Go load worker into ${entryDir} (first run only)...`);
    // -mod=readonly: the committed go.sum decides the driver's version; a build never edits it.
    await execFileAsync('go', ['build', '-mod=readonly', '-o', binary, '.'], {
      cwd: sourceDir,
      maxBuffer: 16 * 1024 * 1024,
    });
    await writeFile(marker, `${goVersion}\n`);
    // Every source edit makes a new key: drop the finished builds of older keys (not locks in use).
    for (const entry of await readdir(cacheRoot, { withFileTypes: true })) {
      const other = join(cacheRoot, entry.name);
      if (entry.isDirectory() && other !== entryDir && existsSync(join(other, '.complete'))) {
        await rm(other, { recursive: true, force: true });
      }
    }
    return { binary, goVersion };
  });
}
