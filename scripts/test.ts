/**
 * `npm test`: starts one real Neo4j for the whole run, then Node's test runner over test/**.
 * Pass files or folders to run a subset: `npm test -- test/instrument`.
 */
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { repoRoot, startLocalNeo4j } from './neo4j/local-neo4j.ts';

function findTests(path: string): string[] {
  if (statSync(path).isFile()) return path.endsWith('.test.ts') ? [path] : [];
  return readdirSync(path, { withFileTypes: true })
    .filter((entry) => entry.name !== 'node_modules' && !entry.name.startsWith('.'))
    .flatMap((entry) => findTests(join(path, entry.name)));
}

const targets = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
const runnerFlags = process.argv.slice(2).filter((arg) => arg.startsWith('-'));
const files = (targets.length > 0 ? targets : [join(repoRoot, 'test')])
  .flatMap((target) => findTests(target))
  .map((file) => relative(repoRoot, file))
  .sort();
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
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
