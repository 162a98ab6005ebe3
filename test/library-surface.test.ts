/**
 * The library half (instrumentDriver and the recorder) must stay importable by a Node worker
 * without pulling in the sidecar's server side: this walks the real import graph of src/index.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ALL_KINDS, moduleGraph, reachableFrom } from '../scripts/import-graph.ts';
import { repoRoot } from '../scripts/neo4j/local-neo4j.ts';

describe('the library entry point', () => {
  // Type-only imports too: a worker's type checker reads them, so they stay off the server side as well.
  const { files, packages } = reachableFrom(moduleGraph(repoRoot), 'src/index.ts', ALL_KINDS);

  it('imports neither fastify, node-cron nor pino', () => {
    for (const forbidden of ['fastify', 'node-cron', 'pino']) {
      assert.ok(!packages.has(forbidden), `src/index.ts reaches ${forbidden}`);
    }
    assert.ok(packages.has('prom-client'), 'sanity: the walk does see package imports');
  });

  it('does not reach the proxy, probes, alerts or server code', () => {
    const reached = [...files];
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
