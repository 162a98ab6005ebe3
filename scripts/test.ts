/**
 * `npm test`: starts one real Neo4j for the whole run, then Node's test runner over test/**.
 * Pass files or folders to run a subset: `npm test -- test/instrument`.
 * `npm run test:unit` (`--unit`): only the files that need no Neo4j (scripts/test-files.ts decides),
 * without starting one; a unit file that tries to start Neo4j fails, so the split cannot drift.
 */
import { spawn } from 'node:child_process';
import { join, relative } from 'node:path';
import { repoRoot, startLocalNeo4j, UNIT_RUN_ENV } from './neo4j/local-neo4j.ts';
import { findTests, testsNeedingNeo4j } from './test-files.ts';

const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const targets = args.filter((arg) => !arg.startsWith('-'));
const runnerFlags = args.filter((arg) => arg.startsWith('-') && arg !== '--unit');
let files = (targets.length > 0 ? targets : [join(repoRoot, 'test')])
  .flatMap((target) => findTests(target))
  .map((file) => relative(repoRoot, file))
  .sort();
if (unitOnly) {
  const needsNeo4j = testsNeedingNeo4j(repoRoot, files);
  files = files.filter((file) => !needsNeo4j.get(file));
}
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}

if (unitOnly) {
  console.log(`${files.length} test files that need no Neo4j`);
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', ...runnerFlags, ...files], {
    cwd: repoRoot,
    stdio: 'inherit',
    env: { ...process.env, [UNIT_RUN_ENV]: '1' },
  });
  process.exit(await new Promise<number>((resolve) => child.once('exit', (exitCode) => resolve(exitCode ?? 1))));
}

console.log(`starting the test Neo4j (first run downloads it from Maven Central)...`);
const neo4j = await startLocalNeo4j({ name: 'test-run', log: (line) => console.log(line) });
const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...runnerFlags, ...files], {
  cwd: repoRoot,
  stdio: 'inherit',
  env: { ...process.env, NEO4J_TEST_URI: neo4j.uri, NEO4J_TEST_PASSWORD: neo4j.password },
});
const stopChild = (signal: NodeJS.Signals) => child.kill(signal);
process.on('SIGINT', stopChild);
process.on('SIGTERM', stopChild);
const code = await new Promise<number>((resolve) => child.once('exit', (exitCode) => resolve(exitCode ?? 1)));
await neo4j.destroy();
process.exit(code);
