/**
 * The library half (instrumentDriver and the recorder) must stay importable by a Node worker
 * without pulling in the sidecar's server side: this walks the real import graph of src/index.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
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

describe('the published declarations', () => {
  it('leave out every member marked @internal (tsconfig.build.json strips them)', () => {
    const parsed = ts.getParsedCommandLineOfConfigFile(
      join(repoRoot, 'tsconfig.build.json'),
      {},
      {
        ...ts.sys,
        onUnRecoverableConfigFileDiagnostic: (diagnostic) => assert.fail(String(diagnostic.messageText)),
      },
    );
    assert.ok(parsed);
    // Only the files that mark something internal, so the check costs seconds rather than a full build.
    const marked = parsed.fileNames
      .map((file) => ({ file, source: readFileSync(file, 'utf8') }))
      .map(({ file, source }) => ({
        file,
        names: [...source.matchAll(/\/\*\* @internal \*\/\s*(?:(?:private|protected|readonly|static)\s+)*(\w+)/g)].map(
          (match) => match[1]!,
        ),
      }))
      .filter(({ names }) => names.length > 0);
    assert.ok(marked.length > 0, 'sanity: src marks some members @internal');
    const declarations = new Map<string, string>();
    const program = ts.createProgram(
      marked.map(({ file }) => file),
      { ...parsed.options, emitDeclarationOnly: true, noEmit: false, sourceMap: false, declarationMap: false },
    );
    program.emit(undefined, (name, text) => declarations.set(name, text));
    for (const { file, names } of marked) {
      const declaration = [...declarations].find(([name]) =>
        name.endsWith(file.slice(join(repoRoot, 'src').length).replace(/\.ts$/, '.d.ts')),
      );
      assert.ok(declaration, `no declaration emitted for ${file}`);
      for (const name of names) {
        assert.doesNotMatch(declaration[1], new RegExp(`\\b${name}\\b`), `${name} ships in ${declaration[0]}`);
      }
    }
  });
});
