/**
 * A cross-process lock around one cache entry's build, so that test files which node:test runs in
 * parallel on a cold cache do not both create the same venv or run the same Maven build.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

const pollIntervalMs = 200;

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM means it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function lockOwnerPid(lockDir: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt(await readFile(join(lockDir, 'pid'), 'utf8'), 10);
    return Number.isFinite(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs `build` while holding `lockDir` (mkdir is atomic). A lock left behind by a killed process
 * is taken over once its owner is gone; `timeoutMs` bounds the wait for a live owner.
 */
export async function withCacheLock<T>(lockDir: string, build: () => Promise<T>, timeoutMs = 15 * 60_000): Promise<T> {
  await mkdir(dirname(lockDir), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  let ownerMissingSince: number | undefined;
  for (;;) {
    try {
      await mkdir(lockDir);
      await writeFile(join(lockDir, 'pid'), String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = await lockOwnerPid(lockDir);
    if (owner !== undefined && !isProcessAlive(owner)) {
      await rm(lockDir, { recursive: true, force: true });
      continue;
    }
    if (owner === undefined) {
      // The owner writes its pid right after mkdir; a pid file missing for long means it died in between.
      ownerMissingSince ??= Date.now();
      if (Date.now() - ownerMissingSince > 5_000) {
        await rm(lockDir, { recursive: true, force: true });
        ownerMissingSince = undefined;
        continue;
      }
    } else {
      ownerMissingSince = undefined;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for the cache lock ${lockDir} (held by pid ${owner})`);
    await new Promise((done) => setTimeout(done, pollIntervalMs));
  }
  try {
    return await build();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}
