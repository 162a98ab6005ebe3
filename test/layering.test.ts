/**
 * The layering of src/ as a test, on the real import graph (scripts/import-graph.ts, also behind
 * `npm run graph`): no import cycles; proxy, probe, alerts and querystats reach the server and the CLI only through
 * src/contracts.ts; the Bolt codec and the metrics stand alone; probe does not reach into the proxy; the
 * contracts load nothing else of the sidecar.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { importCycles, layeringViolations, moduleGraph, reachableFrom } from '../scripts/import-graph.ts';
import { repoRoot } from '../scripts/neo4j/local-neo4j.ts';
import { fileTree } from './support/file-tree.ts';

describe('the layering of src/', () => {
  const graph = moduleGraph(repoRoot);

  it('reads the whole tree, type-only and dynamic imports included', () => {
    assert.ok(graph.files.length > 50, `only ${graph.files.length} modules found`);
    const edge = (from: string, to: string) => graph.edges.find((e) => e.from === from && e.to === to)?.kind;
    assert.equal(edge('src/cli.ts', 'src/components.ts'), 'dynamic');
    assert.equal(edge('src/alerts/evaluator.ts', 'src/contracts.ts'), 'type');
    assert.equal(edge('src/server/sidecar.ts', 'src/server/http.ts'), 'value');
  });

  it('keeps every rule: no cycles, components never import server/ or cli.ts, bolt/ and metrics/ alone, probe apart from proxy, contracts type-only', () => {
    assert.deepEqual(layeringViolations(graph), []);
  });

  it('lets src/probe load without fastify', () => {
    const { packages, files } = reachableFrom(graph, 'src/probe/index.ts');
    assert.ok(!packages.has('fastify') && !packages.has('@fastify/swagger'), [...packages].join(', '));
    assert.ok(packages.has('neo4j-driver'), 'sanity: the walk does see package imports');
    assert.ok(![...files].some((file) => file.startsWith('src/server/')));
  });
});

describe('the layering check itself', () => {
  const tree = fileTree('layering');
  after(() => tree.remove());
  const { root, write } = tree;

  it('reports a forbidden import, a codec or metrics import from outside, probe reaching into the proxy, a value import in the contracts and a cycle', () => {
    write('src/contracts.ts', "import { loadConfig } from './config/index.ts';\nexport const x = loadConfig;\n");
    write('src/config/index.ts', 'export const loadConfig = 1;\n');
    write('src/server/index.ts', "import type { Thing } from '../proxy/index.ts';\nexport type T = Thing;\n");
    write('src/proxy/index.ts', "import { startSidecar } from '../server/index.ts';\nexport type Thing = 1;\n");
    write('src/proxy/bolt/codec.ts', "import { x } from '../../contracts.ts';\nexport const y = x;\n");
    write('src/metrics/recorder.ts', "import type { Thing } from '../proxy/index.ts';\nexport type R = Thing;\n");
    write('src/probe/census.ts', "import { y } from '../proxy/bolt/codec.ts';\nexport const z = y;\n");
    const fixture = moduleGraph(root);
    assert.deepEqual(importCycles(fixture), [['src/proxy/index.ts', 'src/server/index.ts']]);
    const violations = layeringViolations(fixture);
    assert.equal(violations.length, 6, violations.join('\n'));
    assert.match(violations.join('\n'), /import cycle: src\/proxy\/index\.ts → src\/server\/index\.ts/);
    assert.match(
      violations.join('\n'),
      /src\/proxy\/index\.ts imports src\/server\/index\.ts: proxy, probe, alerts and querystats/,
    );
    assert.match(violations.join('\n'), /src\/proxy\/bolt\/codec\.ts imports src\/contracts\.ts: the Bolt codec/);
    assert.match(
      violations.join('\n'),
      /src\/metrics\/recorder\.ts imports src\/proxy\/index\.ts: the metrics import nothing/,
    );
    assert.match(
      violations.join('\n'),
      /src\/probe\/census\.ts imports src\/proxy\/bolt\/codec\.ts: the census and probes/,
    );
    assert.match(
      violations.join('\n'),
      /src\/contracts\.ts imports src\/config\/index\.ts: src\/contracts\.ts imports only types/,
    );
  });
});

describe('how src/ logs errors', () => {
  it('hands pino the error itself ({ err: error }), never its text, so the stack and cause are kept', () => {
    const flattened = moduleGraph(repoRoot).files.flatMap((file) =>
      readFileSync(join(repoRoot, file), 'utf8')
        .split('\n')
        .map((line, index) => ({ where: `${file}:${index + 1}`, line }))
        .filter(({ line }) => /\berr: (String\(|[\w.]+\.message\b|`)/.test(line)),
    );
    assert.deepEqual(flattened, []);
  });
});
