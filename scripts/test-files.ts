/**
 * Which test files there are and which of them need the real Neo4j, derived from the files
 * themselves so the split stays right as tests are added: a test needs Neo4j when something it loads
 * (itself, test helpers, scripts) calls sharedNeo4j, privateNeo4j or startLocalNeo4j.
 * `npm run test:unit` runs the others without starting a server.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { moduleGraph, RUNTIME, reachableFrom } from './import-graph.ts';

/** Every *.test.ts under `path` (a file or a folder), absolute. */
export function findTests(path: string): string[] {
  if (statSync(path).isFile()) return path.endsWith('.test.ts') ? [path] : [];
  return readdirSync(path, { withFileTypes: true })
    .filter((entry) => entry.name !== 'node_modules' && !entry.name.startsWith('.'))
    .flatMap((entry) => findTests(join(path, entry.name)));
}

/** A call, not the definition: `function startLocalNeo4j(` itself does not start anything. */
const STARTS_NEO4J = /(?<!function )\b(?:sharedNeo4j|privateNeo4j|startLocalNeo4j)\(/;

/** For each test file (repository-relative) under `root`, whether running it starts or uses a real Neo4j. */
export function testsNeedingNeo4j(root: string, files: readonly string[]): Map<string, boolean> {
  const graph = moduleGraph(root, ['test', 'scripts']);
  const starts = new Map<string, boolean>();
  const startsNeo4j = (file: string) => {
    let answer = starts.get(file);
    if (answer === undefined) {
      answer = STARTS_NEO4J.test(readFileSync(join(root, file), 'utf8'));
      starts.set(file, answer);
    }
    return answer;
  };
  return new Map(
    files.map((file) => {
      const loaded = reachableFrom(graph, relative(root, join(root, file)), RUNTIME).files;
      return [file, [...loaded].some(startsNeo4j)];
    }),
  );
}
