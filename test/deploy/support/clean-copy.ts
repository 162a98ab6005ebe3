/**
 * A clean copy of the repository, as a `docker build` of this checkout would see it: the files git
 * tracks or would track (untracked files that are not ignored included, deleted ones left out),
 * without node_modules, dist or caches.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, lstat, mkdir, mkdtemp, readlink, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export function repositoryFiles(repoRoot: string): string[] {
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: repoRoot,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  return [...new Set(listed.split('\0').filter((path) => path !== ''))]
    .filter((path) => existsSync(join(repoRoot, path)))
    .sort();
}

export async function cleanCopy(repoRoot: string, prefix = 'neo4j-pool-sidecar-clean-'): Promise<string> {
  const target = await mkdtemp(join(tmpdir(), prefix));
  for (const path of repositoryFiles(repoRoot)) {
    const source = join(repoRoot, path);
    const info = await lstat(source);
    await mkdir(dirname(join(target, path)), { recursive: true });
    // git stores symbolic links as links; anything else that is not a file (a submodule) is not part of a build.
    if (info.isSymbolicLink()) await symlink(await readlink(source), join(target, path));
    else if (info.isFile()) await copyFile(source, join(target, path));
  }
  return target;
}
