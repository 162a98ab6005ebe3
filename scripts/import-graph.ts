/**
 * The import graph of src/, read with the TypeScript parser (static imports and re-exports, `import
 * type`, and dynamic `import()`), the layering rules it must keep, and `npm run graph`, which prints
 * its shape folder by folder with any cycle or broken rule (exit 1 if there is one).
 * test/layering.test.ts and test/library-surface.test.ts hold the tree to the same rules.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/** `type`: erased by the compiler; `dynamic`: an `import()` loaded when that code runs. */
export type ImportKind = 'value' | 'type' | 'dynamic';

export interface ImportEdge {
  /** Repository-relative paths with forward slashes, e.g. `src/proxy/listener.ts`. */
  from: string;
  /** A repository-relative path, or a package name for bare specifiers. */
  to: string;
  kind: ImportKind;
  isPackage: boolean;
}

export interface ModuleGraph {
  root: string;
  files: string[];
  edges: ImportEdge[];
}

/** What loading a module loads: everything but type-only imports. */
export const RUNTIME: readonly ImportKind[] = ['value', 'dynamic'];
export const ALL_KINDS: readonly ImportKind[] = ['value', 'type', 'dynamic'];

/** Every .ts module under `directories` (repository-relative) and what each imports. */
export function moduleGraph(root: string, directories: string | readonly string[] = 'src'): ModuleGraph {
  const files = (typeof directories === 'string' ? [directories] : directories)
    .flatMap((directory) => listTypeScript(join(root, directory)))
    .map((file) => toRepoPath(root, file));
  const edges = files.flatMap((file) => importsOf(root, file));
  return { root, files, edges };
}

function listTypeScript(directory: string): string[] {
  return readdirSync(directory)
    .sort()
    .flatMap((name) => {
      const path = join(directory, name);
      if (statSync(path).isDirectory()) return listTypeScript(path);
      return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [path] : [];
    });
}

function toRepoPath(root: string, file: string): string {
  return relative(root, file).split(sep).join('/');
}

function importsOf(root: string, file: string): ImportEdge[] {
  const source = ts.createSourceFile(file, readFileSync(join(root, file), 'utf8'), ts.ScriptTarget.Latest, true);
  const found: Array<{ specifier: string; kind: ImportKind }> = [];
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const typeOnly = node.importClause?.isTypeOnly === true;
      found.push({ specifier: node.moduleSpecifier.text, kind: typeOnly ? 'type' : 'value' });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      found.push({ specifier: node.moduleSpecifier.text, kind: node.isTypeOnly ? 'type' : 'value' });
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteralLike(node.arguments[0])
    ) {
      found.push({ specifier: node.arguments[0].text, kind: 'dynamic' });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found.map(({ specifier, kind }) => {
    if (!specifier.startsWith('.')) return { from: file, to: packageName(specifier), kind, isPackage: true };
    return { from: file, to: toRepoPath(root, resolve(root, dirname(file), specifier)), kind, isPackage: false };
  });
}

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** Files and packages loaded, transitively, by importing `entry` along edges of the given kinds. */
export function reachableFrom(
  graph: ModuleGraph,
  entry: string,
  kinds: readonly ImportKind[] = RUNTIME,
): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const pending = [entry];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    for (const edge of graph.edges) {
      if (edge.from !== file || !kinds.includes(edge.kind)) continue;
      if (edge.isPackage) packages.add(edge.to);
      else pending.push(edge.to);
    }
  }
  return { files, packages };
}

/** Every strongly connected group of more than one module (or a module importing itself), along all edges. */
export function importCycles(graph: ModuleGraph, kinds: readonly ImportKind[] = ALL_KINDS): string[][] {
  const next = new Map<string, string[]>();
  for (const edge of graph.edges) {
    if (edge.isPackage || !kinds.includes(edge.kind)) continue;
    next.set(edge.from, [...(next.get(edge.from) ?? []), edge.to]);
  }
  // Tarjan's algorithm.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const connect = (file: string) => {
    index.set(file, index.size);
    low.set(file, index.get(file)!);
    stack.push(file);
    onStack.add(file);
    for (const target of next.get(file) ?? []) {
      if (!index.has(target)) {
        connect(target);
        low.set(file, Math.min(low.get(file)!, low.get(target)!));
      } else if (onStack.has(target)) low.set(file, Math.min(low.get(file)!, index.get(target)!));
    }
    if (low.get(file) !== index.get(file)) return;
    const group: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      group.push(member);
    } while (member !== file);
    if (group.length > 1 || next.get(file)?.includes(file)) cycles.push(group.sort());
  };
  for (const file of graph.files) if (!index.has(file)) connect(file);
  return cycles;
}

/**
 * The folder a module belongs to for the layering rules and the printed shape: `proxy`, `proxy/bolt`,
 * `metrics`, or the file name for modules at the top of src (`cli.ts`, `contracts.ts`).
 */
export function layerOf(file: string): string {
  const parts = file.replace(/^src\//, '').split('/');
  if (parts.length === 1) return parts[0]!;
  if (parts[0] === 'proxy' && parts[1] === 'bolt' && parts.length > 2) return 'proxy/bolt';
  return parts[0]!;
}

/** The parts that implement components: they see the contracts, never the server or the CLI that run them. */
const COMPONENT_LAYERS = new Set(['proxy', 'proxy/bolt', 'probe', 'alerts', 'querystats']);
const RUNNER_LAYERS = new Set(['server', 'cli.ts', 'components.ts']);

/** Each broken rule as a sentence naming the import; empty when the graph keeps them all. */
export function layeringViolations(graph: ModuleGraph): string[] {
  const violations: string[] = [];
  for (const cycle of importCycles(graph)) violations.push(`import cycle: ${cycle.join(' → ')}`);
  for (const edge of graph.edges) {
    if (!edge.from.startsWith('src/')) continue;
    const from = layerOf(edge.from);
    const to = edge.isPackage ? undefined : layerOf(edge.to);
    const where = `${edge.from} imports ${edge.to}`;
    if (COMPONENT_LAYERS.has(from) && to && RUNNER_LAYERS.has(to)) {
      violations.push(
        `${where}: proxy, probe, alerts and querystats depend on src/contracts.ts, not on the server or the CLI`,
      );
    }
    if (from === 'proxy/bolt' && to !== undefined && to !== 'proxy/bolt') {
      violations.push(`${where}: the Bolt codec imports nothing outside src/proxy/bolt`);
    }
    if (from === 'metrics' && to !== undefined && to !== 'metrics') {
      violations.push(`${where}: the metrics import nothing else of src (sources depend on them, not the reverse)`);
    }
    if (from === 'probe' && (to === 'proxy' || to === 'proxy/bolt')) {
      violations.push(
        `${where}: the census and probes share with the proxy through metrics or contracts, not src/proxy`,
      );
    }
    if (from === 'contracts.ts' && to !== undefined && edge.kind !== 'type') {
      violations.push(`${where}: src/contracts.ts imports only types from src (import type)`);
    }
  }
  return violations;
}

/** Folder → the folders it imports, `(type)` when only types cross that edge. */
export function layerShape(graph: ModuleGraph): Map<string, Map<string, 'value' | 'type'>> {
  const shape = new Map<string, Map<string, 'value' | 'type'>>();
  for (const file of graph.files) shape.set(layerOf(file), shape.get(layerOf(file)) ?? new Map());
  for (const edge of graph.edges) {
    if (edge.isPackage) continue;
    const from = layerOf(edge.from);
    const to = layerOf(edge.to);
    if (from === to) continue;
    const targets = shape.get(from)!;
    targets.set(to, targets.get(to) === 'value' || edge.kind !== 'type' ? 'value' : 'type');
  }
  return shape;
}

function printShape(root: string): number {
  const graph = moduleGraph(root);
  const shape = layerShape(graph);
  const width = Math.max(...[...shape.keys()].map((layer) => layer.length));
  console.log(`src/: ${graph.files.length} modules, ${graph.edges.filter((edge) => !edge.isPackage).length} imports`);
  console.log('folder → what it imports ((type) = types only, erased at run time)\n');
  for (const [layer, targets] of [...shape].sort(([a], [b]) => a.localeCompare(b))) {
    const list = [...targets]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([target, kind]) => (kind === 'type' ? `${target} (type)` : target));
    console.log(`${layer.padEnd(width)}  → ${list.length > 0 ? list.join(', ') : '(nothing in src)'}`);
  }
  const cycles = importCycles(graph);
  console.log(`\nimport cycles: ${cycles.length === 0 ? 'none' : cycles.map((cycle) => cycle.join(' → ')).join('; ')}`);
  const library = reachableFrom(graph, 'src/index.ts', ALL_KINDS);
  console.log(
    `library entry (src/index.ts) reaches: ${[...new Set([...library.files].map(layerOf))].sort().join(', ')}`,
  );
  const violations = layeringViolations(graph);
  console.log(
    violations.length === 0 ? 'layering rules: kept' : `layering rules broken:\n  ${violations.join('\n  ')}`,
  );
  return violations.length === 0 ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = printShape(resolve(dirname(new URL(import.meta.url).pathname), '..'));
}
