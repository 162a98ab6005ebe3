/** `npm run test:unit` picks the files that need no Neo4j from what they load (scripts/test-files.ts). */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { repoRoot } from '../scripts/neo4j/local-neo4j.ts';
import { findTests, testsNeedingNeo4j } from '../scripts/test-files.ts';
import { fileTree } from './support/file-tree.ts';

describe('which tests need Neo4j', () => {
  it('tells them apart in this repository', () => {
    const needs = testsNeedingNeo4j(repoRoot, [
      'test/cli.test.ts',
      'test/proxy/sidecar.test.ts',
      'test/proxy/bolt/packstream.test.ts',
      'test/layering.test.ts',
    ]);
    assert.deepEqual(Object.fromEntries(needs), {
      'test/cli.test.ts': true,
      'test/proxy/sidecar.test.ts': true,
      'test/proxy/bolt/packstream.test.ts': false,
      'test/layering.test.ts': false,
    });
  });

  const tree = fileTree('test-files');
  after(() => tree.remove());
  const { root, write } = tree;

  it('follows helpers, and counts calls rather than definitions or type imports', () => {
    mkdirSync(join(root, 'scripts'), { recursive: true });
    write('test/support/neo4j.ts', 'export function sharedNeo4j() { return startLocalNeo4j(); }\nexport type T = 1;\n');
    write(
      'test/support/helper.ts',
      "import { sharedNeo4j } from './neo4j.ts';\nexport const h = () => sharedNeo4j();\n",
    );
    write('test/through-helper.test.ts', "import { h } from './support/helper.ts';\nh();\n");
    write('test/types-only.test.ts', "import type { T } from './support/neo4j.ts';\nexport const t: T = 1;\n");
    write('test/plain.test.ts', 'export const nothing = 0;\n');
    const files = findTests(join(root, 'test')).map((file) => file.slice(root.length + 1));
    assert.deepEqual(Object.fromEntries(testsNeedingNeo4j(root, files)), {
      'test/plain.test.ts': false,
      'test/through-helper.test.ts': true,
      'test/types-only.test.ts': false,
    });
  });
});
