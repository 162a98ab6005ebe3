/**
 * The official Neo4j Go driver (v5, from the Go module proxy) as a runnable scenario client
 * (test/clients/go), for tests that need a client with Go's own Bolt implementation.
 *
 * Built once with `go build` into .cache/go-client/<key>/, where the key hashes go.mod, go.sum and the
 * sources: editing any of them rebuilds, nothing else does. Needs `go` (1.22+) on PATH; the committed
 * go.sum decides the driver version (the build runs with -mod=readonly and never edits it).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../neo4j/local-neo4j.ts';
import { withCacheLock } from '../tools/cache-lock.ts';

const execFileAsync = promisify(execFile);

export const goClientDir = join(repoRoot, 'test', 'clients', 'go');
const cacheRoot = join(repoRoot, '.cache', 'go-client');

/** The driver line go.mod pins (github.com/neo4j/neo4j-go-driver/v5). */
export type GoDriverLine = '5';

export interface GoBuildOptions {
  /** Folder with go.mod, go.sum and the program's .go files. */
  sourceDir: string;
  /** Cache folder that holds one subfolder per build key. */
  cacheRoot: string;
  /** File name of the built binary. */
  binaryName: string;
  log?: (line: string) => void;
}

async function buildKey(sourceDir: string): Promise<string> {
  const hash = createHash('sha256');
  const files = (await readdir(sourceDir)).filter((name) => /\.go$|^go\.(mod|sum)$/.test(name)).sort();
  for (const name of files) {
    hash.update(`\0${name}\0`);
    hash.update(await readFile(join(sourceDir, name)));
  }
  return hash.digest('hex').slice(0, 16);
}

/** Builds a Go program once per source version (under a cross-process lock) and returns the binary. */
export async function ensureGoBuild(options: GoBuildOptions): Promise<string> {
  const entryDir = join(options.cacheRoot, await buildKey(options.sourceDir));
  const binary = join(entryDir, options.binaryName);
  const marker = join(entryDir, '.complete');
  if (existsSync(marker) && existsSync(binary)) return binary;
  return withCacheLock(`${entryDir}.lock`, async () => {
    if (existsSync(marker) && existsSync(binary)) return binary;
    options.log?.(`building ${options.sourceDir} into ${entryDir} (first run only)...`);
    await execFileAsync('go', ['build', '-mod=readonly', '-o', binary, '.'], {
      cwd: options.sourceDir,
      maxBuffer: 16 * 1024 * 1024,
    });
    if (!existsSync(binary)) throw new Error(`go build finished but did not produce ${binary}`);
    await writeFile(marker, `${new Date().toISOString()}\n`);
    // Every source edit makes a new key: drop the finished builds of older keys (not locks in use).
    for (const entry of await readdir(options.cacheRoot, { withFileTypes: true })) {
      const other = join(options.cacheRoot, entry.name);
      if (entry.isDirectory() && other !== entryDir && existsSync(join(other, '.complete'))) {
        await rm(other, { recursive: true, force: true });
      }
    }
    return binary;
  });
}

/** Builds the scenario client if needed and returns how to run it; the scenario flags go after `args`. */
export async function ensureGoClient(
  options: { log?: (line: string) => void } = {},
): Promise<{ command: string; args: string[] }> {
  const binary = await ensureGoBuild({
    sourceDir: goClientDir,
    cacheRoot,
    binaryName: 'scenario-client',
    log: options.log,
  });
  return { command: binary, args: [] };
}
