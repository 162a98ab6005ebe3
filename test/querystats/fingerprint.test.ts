import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  FingerprintCache,
  fingerprint,
  MAX_NORMALIZED_TEXT_LENGTH,
  normalizeCypher,
} from '../../src/querystats/fingerprint.ts';

const cases: Array<[string, string, string]> = [
  ['single-quoted string', "MATCH (n) WHERE n.name = 'Alice' RETURN n", 'MATCH (n) WHERE n.name = ? RETURN n'],
  ['double-quoted string', 'MATCH (n) WHERE n.name = "Alice" RETURN n', 'MATCH (n) WHERE n.name = ? RETURN n'],
  ['escaped quote of its own kind', 'RETURN \'it\\\'s\', "say \\"hi\\""', 'RETURN ?, ?'],
  ['the other quote kind inside', `RETURN 'say "hi"', "it's"`, 'RETURN ?, ?'],
  ['escaped backslash before the closing quote', "RETURN 'a\\\\', n.x", 'RETURN ?, n.x'],
  ['unicode escape', "RETURN '\\u00e9t\\u00e9'", 'RETURN ?'],
  ['comment-like text inside a string', "RETURN '// not a comment', '/* nor this */' + n", 'RETURN ?, ? + n'],
  ['unterminated string', "RETURN 'never closed", 'RETURN ?'],
  ['decimal integer', 'RETURN 42', 'RETURN ?'],
  ['underscored integer', 'RETURN 1_000_000', 'RETURN ?'],
  ['hexadecimal', 'RETURN 0x1F, 0XFF', 'RETURN ?, ?'],
  ['octal', 'RETURN 0o17, 017', 'RETURN ?, ?'],
  ['float', 'RETURN 3.14, .5', 'RETURN ?, ?'],
  ['exponent', 'RETURN 1e10, 1.5E-3, 2e+2', 'RETURN ?, ?, ?'],
  [
    'negative number after an operator or keyword',
    'MATCH (n) WHERE n.x > -5 RETURN -1',
    'MATCH (n) WHERE n.x > ? RETURN ?',
  ],
  ['binary minus stays', 'RETURN n.x - 1, n.y-2', 'RETURN n.x-?, n.y-?'],
  ['booleans', 'MATCH (n) WHERE n.a = true AND n.b = FALSE RETURN n', 'MATCH (n) WHERE n.a = ? AND n.b = ? RETURN n'],
  ['null as a value', 'MATCH (n) SET n.x = null', 'MATCH (n) SET n.x = ?'],
  [
    'IS NULL and IS NOT NULL stay',
    'MATCH (n) WHERE n.x IS NULL OR n.y IS NOT NULL',
    'MATCH (n) WHERE n.x IS NULL OR n.y IS NOT NULL',
  ],
  ['property keys named like literals stay', 'RETURN n.true, n.null, {null: 1}', 'RETURN n.true, n.null, {null: ?}'],
  ['list of literals', 'MATCH (n) WHERE n.id IN [1, 2, 3] RETURN n', 'MATCH (n) WHERE n.id IN ? RETURN n'],
  ['empty list', 'RETURN []', 'RETURN ?'],
  [
    'nested lists and maps of literals',
    "UNWIND [[1, 'a'], [{k: [true, null]}], []] AS x RETURN x",
    'UNWIND ? AS x RETURN x',
  ],
  ['list of maps of literals', "UNWIND [{a: 1, b: 'x'}, {a: 2}] AS row RETURN row", 'UNWIND ? AS row RETURN row'],
  ['map keeps its keys', "CREATE (n:Person {name: 'Bob', age: 42})", 'CREATE (n:Person {name: ?, age: ?})'],
  ['map with a nested literal list', 'RETURN {tags: [1, 2], x: {y: 3}}', 'RETURN {tags: ?, x: {y: ?}}'],
  ['list holding a variable is not folded', 'RETURN [1, x, 3]', 'RETURN [?, x, ?]'],
  [
    'list comprehension stays',
    'RETURN [x IN range(0, 10) WHERE x > 2 | x * 2]',
    'RETURN [x IN range(?, ?) WHERE x > ? | x*?]',
  ],
  ['subscript and slice', 'RETURN n[0], list[1..3]', 'RETURN n[?], list[?..?]'],
  ['line comment', 'MATCH (n) // find them all\nRETURN n', 'MATCH (n) RETURN n'],
  ['block comment', 'MATCH (n) /* every\n node */ RETURN n', 'MATCH (n) RETURN n'],
  ['unterminated block comment', 'MATCH (n) RETURN n /* trailing', 'MATCH (n) RETURN n'],
  ['whitespace runs collapse', 'MATCH   (n)\n\t\tRETURN    n', 'MATCH (n) RETURN n'],
  [
    'parameters stay',
    'MATCH (n {id: $id}) WHERE n.x IN $list RETURN $0, $`odd name`',
    'MATCH (n {id: $id}) WHERE n.x IN $list RETURN $0, $`odd name`',
  ],
  [
    'backticked identifiers stay verbatim',
    "MATCH (`my node`:`My Label` {`key with ``tick`: 'v'}) RETURN `my node`",
    'MATCH (`my node`:`My Label` {`key with ``tick`: ?}) RETURN `my node`',
  ],
  [
    'labels, relationship types and keywords stay as written',
    'match (a:Person)-[r:KNOWS*1..3]->(b) return b',
    'match (a:Person)-[r:KNOWS*?..?]->(b) return b',
  ],
  ['function calls stay', 'RETURN count(*), toUpper(n.name)', 'RETURN count(*), toUpper(n.name)'],
  [
    'procedure call',
    "CALL db.index.fulltext.queryNodes('idx', 'term') YIELD node RETURN node",
    'CALL db.index.fulltext.queryNodes(?, ?) YIELD node RETURN node',
  ],
];

describe('normalizeCypher', () => {
  for (const [name, input, expected] of cases) {
    it(name, () => {
      assert.equal(normalizeCypher(input), expected);
    });
  }

  it('never throws on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        normalizeCypher(text);
      }),
      { numRuns: 2000 },
    );
  });

  it('survives deeply nested brackets without recursing to a stack overflow', () => {
    const deep = `RETURN ${'['.repeat(50_000)}1${']'.repeat(50_000)}`;
    assert.ok(normalizeCypher(deep).startsWith('RETURN ['));
  });
});

describe('fingerprint', () => {
  it('gives a 16-hex-digit id of the normalised text, the same for any layout', () => {
    const a = fingerprint("MATCH (n:Person {name: 'Alice'})\nRETURN n // who");
    const b = fingerprint('MATCH (n:Person{name:"Bob"}) RETURN n');
    assert.match(a.id, /^[0-9a-f]{16}$/);
    assert.equal(a.id, b.id);
    assert.equal(a.text, 'MATCH (n:Person {name: ?}) RETURN n');
  });

  it('cuts a very long normalised text for display but ids the whole of it', () => {
    const long = `RETURN ${Array.from({ length: 3000 }, (_, i) => `n.p${i}`).join(', ')}`;
    const longer = `${long}, n.extra`;
    assert.ok(fingerprint(long).text.length <= MAX_NORMALIZED_TEXT_LENGTH + 1);
    assert.notEqual(fingerprint(long).id, fingerprint(longer).id);
  });
});

/** A literal of any kind, written in any of the ways Cypher allows. */
const literal: fc.Arbitrary<string> = fc.letrec<{ value: string; list: string; map: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.string({ maxLength: 12 }).map((s) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`),
    fc.string({ maxLength: 12 }).map((s) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`),
    fc.integer({ min: -1_000_000, max: 1_000_000 }).map(String),
    fc.nat().map((n) => `0x${n.toString(16)}`),
    fc.nat().map((n) => `0o${n.toString(8)}`),
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => String(d)),
    fc.constantFrom('true', 'false', 'TRUE', 'null', 'NULL'),
    tie('list'),
  ),
  list: fc.array(tie('value'), { maxLength: 4 }).map((items) => `[${items.join(', ')}]`),
  map: fc.array(tie('value'), { maxLength: 3 }).map((values) => `{${values.map((v, i) => `k${i}: ${v}`).join(', ')}}`),
})).value;

/** Query templates whose holes take literals; structure differs between templates. */
const templates: Array<(l: readonly string[]) => string> = [
  (l) => `MATCH (n:Person) WHERE n.age > ${l[0]} RETURN n.name LIMIT ${l[1]}`,
  (l) => `MATCH (n:Person {name: ${l[0]}}) SET n.score = ${l[1]} RETURN n`,
  (l) => `UNWIND ${l[0]} AS x RETURN x, ${l[1]}`,
  (l) => `MATCH (a)-[:KNOWS]->(b) WHERE a.id IN ${l[0]} AND b.flag = ${l[1]} RETURN b`,
  (l) => `RETURN [${l[0]}, ${l[1]}]`,
  (l) => `CREATE (n:Thing {tags: ${l[0]}, at: ${l[1]}})`,
];

describe('fingerprint properties', () => {
  it('two texts differing only in literal values share a fingerprint', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: templates.length - 1 }),
        fc.tuple(literal, literal),
        fc.tuple(literal, literal),
        (which, first, second) => {
          const template = templates[which]!;
          assert.equal(fingerprint(template(first)).id, fingerprint(template(second)).id);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('texts differing in structure do not', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: templates.length - 1 }),
        fc.integer({ min: 0, max: templates.length - 1 }),
        fc.tuple(literal, literal),
        fc.tuple(literal, literal),
        (a, b, first, second) => {
          fc.pre(a !== b);
          assert.notEqual(fingerprint(templates[a]!(first)).id, fingerprint(templates[b]!(second)).id);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('a different identifier, label or parameter name is a different fingerprint', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,8}$/),
        fc.stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,8}$/),
        fc.constantFrom('label', 'property', 'parameter'),
        (x, y, where) => {
          fc.pre(x !== y && !/^(true|false|null)$/i.test(x) && !/^(true|false|null)$/i.test(y));
          const query = (name: string) =>
            where === 'label'
              ? `MATCH (n:${name}) RETURN n`
              : where === 'property'
                ? `MATCH (n) RETURN n.${name}`
                : `MATCH (n) WHERE n.id = $${name} RETURN n`;
          assert.notEqual(fingerprint(query(x)).id, fingerprint(query(y)).id);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('FingerprintCache', () => {
  it('answers a repeated text from the cache with the same fingerprint object', () => {
    const cache = new FingerprintCache(10);
    const first = cache.get('RETURN 1');
    assert.equal(cache.get('RETURN 1'), first);
    assert.equal(cache.get('RETURN 2').id, first.id);
  });

  it('holds at most two generations of its capacity', () => {
    const cache = new FingerprintCache(100);
    for (let i = 0; i < 10_000; i++) cache.get(`RETURN ${i} AS v${i}`);
    assert.ok(cache.size <= 200, `cache holds ${cache.size}`);
    assert.ok(cache.size > 100);
  });

  it('keeps a text in use across a generation change', () => {
    const cache = new FingerprintCache(10);
    const hot = cache.get('MATCH (n) RETURN n');
    for (let i = 0; i < 100; i++) {
      cache.get(`RETURN ${i} AS v${i}`);
      assert.equal(cache.get('MATCH (n) RETURN n'), hot);
    }
  });
});
