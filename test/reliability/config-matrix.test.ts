/**
 * Every option of the schema, found by walking its JSON Schema so that a new option is covered
 * without touching this file, given a value of the wrong type, a value out of its range and an
 * unknown sibling key: loading fails with a ConfigError that names that option, never a crash or a
 * silently accepted value. A few of the same through the real CLI must exit 2.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { z } from 'zod';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { configSchema } from '../../src/config/schema.ts';
import { cliArgv } from '../support/cli.ts';

interface JsonSchemaNode {
  type?: string | string[];
  properties?: Record<string, JsonSchemaNode>;
  additionalProperties?: boolean | JsonSchemaNode;
  items?: JsonSchemaNode;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  anyOf?: JsonSchemaNode[];
}

interface Option {
  path: string[];
  node: JsonSchemaNode;
}

const root = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchemaNode;

function typeOf(node: JsonSchemaNode): string | undefined {
  if (node.enum) return 'enum';
  return Array.isArray(node.type) ? node.type[0] : node.type;
}

/** Leaf options, and the objects (for unknown keys), depth first. */
function walk(node: JsonSchemaNode, path: string[], leaves: Option[], objects: Option[]): void {
  if (typeOf(node) === 'object' && node.properties) {
    objects.push({ path, node });
    for (const [key, child] of Object.entries(node.properties)) walk(child, [...path, key], leaves, objects);
    return;
  }
  leaves.push({ path, node });
}

const leaves: Option[] = [];
const objects: Option[] = [];
walk(root, [], leaves, objects);

function treeWith(path: string[], value: unknown): Record<string, unknown> {
  const tree: Record<string, unknown> = {};
  let node = tree;
  for (const segment of path.slice(0, -1)) {
    node[segment] = {};
    node = node[segment] as Record<string, unknown>;
  }
  node[path[path.length - 1] ?? ''] = value;
  return tree;
}

function load(tree: Record<string, unknown>): unknown {
  // JSON is YAML, so the file path of loadConfig parses it as users' files are parsed.
  return loadConfig({ file: 'matrix.yaml', env: {}, readFile: () => JSON.stringify(tree) });
}

function assertRejectedNaming(path: string, tree: Record<string, unknown>, what: string): void {
  let thrown: unknown;
  try {
    load(tree);
  } catch (error) {
    thrown = error;
  }
  assert.ok(thrown instanceof ConfigError, `${what} for ${path} was ${thrown ? `thrown as ${thrown}` : 'accepted'}`);
  assert.ok(
    thrown.issues.some((issue) => issue.path === path),
    `${what} for ${path}: issues name ${thrown.issues.map((issue) => issue.path).join(', ')}`,
  );
}

function wrongType(node: JsonSchemaNode): unknown {
  switch (typeOf(node)) {
    case 'string':
    case 'enum':
      return 12345;
    case 'number':
    case 'integer':
    case 'boolean':
    case 'array':
      return { not: 'this type' };
    case 'object':
      return 'not-an-object';
    default:
      return undefined;
  }
}

/** Values just outside the option's declared range, or none when it has no range. */
function outOfRange(node: JsonSchemaNode): unknown[] {
  const values: unknown[] = [];
  const type = typeOf(node);
  if (type === 'enum') values.push('not-one-of-the-choices');
  if (type === 'integer') values.push(1.5);
  if (type === 'integer' || type === 'number') {
    if (node.minimum !== undefined) values.push(node.minimum - 1);
    if (node.exclusiveMinimum !== undefined) values.push(node.exclusiveMinimum);
    if (node.maximum !== undefined && node.maximum < Number.MAX_SAFE_INTEGER) values.push(node.maximum + 1);
    if (node.exclusiveMaximum !== undefined) values.push(node.exclusiveMaximum);
  }
  if (type === 'string' && node.minLength !== undefined && node.minLength > 0) values.push('');
  return values;
}

describe('the configuration matrix', () => {
  it('walks a schema that has options at all', () => {
    assert.ok(leaves.length > 40, `${leaves.length} options`);
    assert.ok(objects.length > 5, `${objects.length} sections`);
  });

  it('a wrong type for every option is a ConfigError naming it', () => {
    let checked = 0;
    for (const option of leaves) {
      const value = wrongType(option.node);
      if (value === undefined) continue;
      assertRejectedNaming(option.path.join('.'), treeWith(option.path, value), `wrong type ${JSON.stringify(value)}`);
      checked++;
    }
    assert.ok(checked > 40, `${checked} options checked`);
  });

  it('an out-of-range value for every option with a range is a ConfigError naming it', () => {
    let checked = 0;
    for (const option of leaves) {
      for (const value of outOfRange(option.node)) {
        assertRejectedNaming(
          option.path.join('.'),
          treeWith(option.path, value),
          `out of range ${JSON.stringify(value)}`,
        );
        checked++;
      }
    }
    assert.ok(checked > 30, `${checked} values checked`);
  });

  it('an unknown key in every section is a ConfigError naming it', () => {
    for (const section of objects) {
      if (section.node.additionalProperties !== false) continue;
      const path = [...section.path, 'notAnOption'];
      assertRejectedNaming(path.join('.'), treeWith(path, 1), 'an unknown key');
    }
  });

  it('options from the environment are named the same way', () => {
    assert.throws(
      () => loadConfig({ env: { SIDECAR__STATSD__PORT: 'eighty' } }),
      (error: unknown) => error instanceof ConfigError && error.issues.some((issue) => issue.path === 'statsd.port'),
    );
    assert.throws(
      () => loadConfig({ env: { SIDECAR__PROXY__NOT_AN_OPTION: '1' } }),
      (error: unknown) =>
        error instanceof ConfigError && error.issues.some((issue) => issue.path === 'proxy.notAnOption'),
    );
  });
});

describe('the CLI on bad configuration', () => {
  const workDir = mkdtempSync(join(tmpdir(), 'config-matrix-'));
  after(() => rmSync(workDir, { recursive: true, force: true }));

  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['wrong type', { statsd: { port: 'eighty' } }, 'statsd.port'],
    ['out of range', { proxy: { maxConnections: 0 } }, 'proxy.maxConnections'],
    ['unknown key', { http: { prot: 9000 } }, 'http.prot'],
    ['bad enum', { log: { level: 'loud' } }, 'log.level'],
  ];
  for (const [name, tree, path] of cases) {
    it(`${name}: exit 2 and the option named on stderr`, async () => {
      const file = join(workDir, `${name.replace(/\s/g, '-')}.yaml`);
      writeFileSync(file, JSON.stringify(tree));
      const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          cliArgv(['--config', file]),
          { env: { ...process.env, NEO4J_URI: 'bolt://127.0.0.1:1', NEO4J_PASSWORD: 'x' }, timeout: 30_000 },
          (error, _stdout, stderr) =>
            resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stderr }),
        );
      });
      assert.equal(result.code, 2, result.stderr);
      assert.ok(result.stderr.includes(path), result.stderr);
    });
  }
});
