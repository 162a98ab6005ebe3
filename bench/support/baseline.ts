/**
 * A baseline build for before/after figures from one run (`--ref <commit>`): the sidecar as it was at
 * another commit, compiled beside the current one, so a section can measure both in the same
 * alternating rounds instead of comparing two runs on a machine whose load changed between them.
 * The commit's src/, bench/ and package.json are exported with `git archive` (no worktree, nothing in
 * the repository changes) into .cache/bench-ref/<sha>, and compiled into .cache/bench-build-ref.
 */
import { execFile } from 'node:child_process';
import { mkdir, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../../scripts/neo4j/local-neo4j.ts';
import { buildSidecar } from './sidecar-process.ts';

const run = promisify(execFile);

export interface BaselineBuild {
  /** The commit as given and its short hash, e.g. `main~3 (f3fcfbe)`. */
  readonly label: string;
  readonly compiledEntry: string;
}

export async function buildBaseline(ref: string, log: (line: string) => void): Promise<BaselineBuild> {
  const sha = (await run('git', ['rev-parse', '--short', `${ref}^{commit}`], { cwd: repoRoot })).stdout.trim();
  const sourceRoot = join(repoRoot, '.cache', 'bench-ref', sha);
  log(`compiling the baseline sidecar at ${ref} (${sha})...`);
  await rm(sourceRoot, { recursive: true, force: true });
  await mkdir(sourceRoot, { recursive: true });
  const archive = join(sourceRoot, '..', `${sha}.tar`);
  await run('git', ['archive', '--format=tar', '-o', archive, sha, 'src', 'bench', 'package.json'], { cwd: repoRoot });
  await run('tar', ['-xf', archive, '-C', sourceRoot]);
  await rm(archive, { force: true });
  // Its sources import packages by name: the same node_modules as this checkout.
  await symlink(join(repoRoot, 'node_modules'), join(sourceRoot, 'node_modules'));
  const compiledEntry = await buildSidecar({ sourceRoot, outDir: join(repoRoot, '.cache', 'bench-build-ref') });
  return { label: ref === sha ? sha : `${ref} (${sha})`, compiledEntry };
}
