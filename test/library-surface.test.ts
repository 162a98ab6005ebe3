/**
 * The library half (instrumentDriver and the recorder) must stay importable by a Node worker
 * without pulling in the sidecar's server side: this walks the real import graph of src/index.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../scripts/neo4j/local-neo4j.ts';

const IMPORT = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function importGraph(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    for (const match of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const specifier = match[1] ?? match[2]!;
      if (specifier.startsWith('.')) visit(resolve(dirname(file), specifier));
      else
        packages.add(specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!);
    }
  };
  visit(entry);
  return { files, packages };
}

describe('the library entry point', () => {
  const { files, packages } = importGraph(join(repoRoot, 'src', 'index.ts'));

  it('imports neither fastify, node-cron nor pino', () => {
    for (const forbidden of ['fastify', 'node-cron', 'pino']) {
      assert.ok(!packages.has(forbidden), `src/index.ts reaches ${forbidden}`);
    }
    assert.ok(packages.has('prom-client'), 'sanity: the walk does see package imports');
  });

  it('does not reach the proxy, probes, alerts or server code', () => {
    const reached = [...files].map((file) => file.slice(repoRoot.length + 1));
    const serverSide = reached.filter(
      (file) => /^src\/(proxy|probe|alerts|server)\//.test(file) || file === 'src/cli.ts',
    );
    assert.deepEqual(serverSide, []);
    assert.ok(reached.includes('src/instrument/driver.ts'));
  });

  it('exports instrumentDriver and the recorder at run time', async () => {
    const library = await import('../src/index.ts');
    assert.equal(typeof library.instrumentDriver, 'function');
    assert.equal(typeof library.Recorder, 'function');
    assert.equal(typeof library.PrometheusSink, 'function');
  });
});
