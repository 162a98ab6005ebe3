import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeBoltMessage,
  decodePackStream,
  encodePackStream,
  PackStreamError,
  type PackStreamErrorReason,
  PackStreamFloat,
  PackStreamReader,
  PackStreamStruct,
  type PackStreamValue,
  readMessageMapEntries,
} from '../../../src/proxy/bolt/index.ts';
import { readMessageShortString } from '../../../src/proxy/bolt/packstream-decoder.ts';
import { hex, map } from './bolt-test-helpers.ts';

function expectPackStreamError(reason: PackStreamErrorReason, run: () => unknown): void {
  assert.throws(run, (error: unknown) => error instanceof PackStreamError && error.reason === reason);
}

/** [value, its canonical encoding] pairs from the PackStream spec and boundaries of each width. */
const CANONICAL: readonly [PackStreamValue, string][] = [
  [null, 'C0'],
  [true, 'C3'],
  [false, 'C2'],
  [0, '00'],
  [42, '2A'],
  [127, '7F'],
  [-1, 'FF'],
  [-16, 'F0'],
  [-17, 'C8 EF'],
  [-128, 'C8 80'],
  [128, 'C9 00 80'],
  [-129, 'C9 FF 7F'],
  [32767, 'C9 7F FF'],
  [32768, 'CA 00 00 80 00'],
  [-2147483648, 'CA 80 00 00 00'],
  [2147483648, 'CB 00 00 00 00 80 00 00 00'],
  [9223372036854775807n, 'CB 7F FF FF FF FF FF FF FF'],
  [-9223372036854775808n, 'CB 80 00 00 00 00 00 00 00'],
  [1.23, 'C1 3F F3 AE 14 7A E1 47 AE'],
  ['', '80'],
  ['A', '81 41'],
  ['ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'D0 1A 4142434445464748494A4B4C4D4E4F505152535455565758595A'],
  ['Größenmaßstäbe', 'D0 12 47 72 C3 B6 C3 9F 65 6E 6D 61 C3 9F 73 74 C3 A4 62 65'],
  [new Uint8Array([]), 'CC 00'],
  [new Uint8Array([1, 2, 3]), 'CC 03 01 02 03'],
  [[], '90'],
  [[1, 2, 3], '93 01 02 03'],
  [new Map(), 'A0'],
  [map({ one: 'eins' }), 'A1 83 6F 6E 65 84 65 69 6E 73'],
  [new PackStreamStruct(0x4e, [1, [], new Map()]), 'B3 4E 01 90 A0'],
];

describe('PackStream encoding and decoding', () => {
  for (const [value, encoding] of CANONICAL) {
    it(`${encoding} ⇄ ${String(value instanceof Map ? 'map' : value)}`, () => {
      assert.deepEqual(encodePackStream(value), hex(encoding));
      assert.deepEqual(decodePackStream(hex(encoding)), value);
    });
  }

  it('decodes non-canonical integer widths and every size-field width', () => {
    assert.equal(decodePackStream(hex('C9 00 2A')), 42);
    assert.equal(decodePackStream(hex('CB 00 00 00 00 00 00 00 2A')), 42);
    assert.equal(decodePackStream(hex('D1 00 01 41')), 'A');
    assert.equal(decodePackStream(hex('D2 00 00 00 01 41')), 'A');
    assert.deepEqual(decodePackStream(hex('D5 00 01 01')), [1]);
    assert.deepEqual(decodePackStream(hex('DA 00 00 00 01 81 61 01')), map({ a: 1 }));
    assert.deepEqual(decodePackStream(hex('CE 00 00 00 01 FF')), new Uint8Array([255]));
  });

  it('encodes lists, maps, strings and bytes past 15/255/65535 with wider size fields', () => {
    const list = Array.from({ length: 40 }, (_, index) => index + 1);
    assert.deepEqual(encodePackStream(list).subarray(0, 3), hex('D4 28 01'));
    assert.deepEqual(encodePackStream('x'.repeat(300)).subarray(0, 3), hex('D1 01 2C'));
    assert.deepEqual(encodePackStream(new Uint8Array(70_000)).subarray(0, 5), hex('CE 00 01 11 70'));
    const bigMap = new Map(Array.from({ length: 26 }, (_, index) => [String.fromCharCode(65 + index), index + 1]));
    assert.deepEqual(encodePackStream(bigMap).subarray(0, 5), hex('D8 1A 81 41 01'));
    assert.deepEqual(decodePackStream(encodePackStream(bigMap)), bigMap);
  });

  it('keeps floats floats with preserveFloats, so 2.0 re-encodes as a float', () => {
    const two = hex('C1 40 00 00 00 00 00 00 00');
    assert.equal(decodePackStream(two), 2);
    const preserved = decodePackStream(two, { preserveFloats: true });
    assert.deepEqual(preserved, new PackStreamFloat(2));
    assert.deepEqual(encodePackStream(preserved), two);
    assert.deepEqual(encodePackStream(0.5), hex('C1 3F E0 00 00 00 00 00 00'));
    assert.deepEqual(encodePackStream(Number.NaN).subarray(0, 1), hex('C1'));
  });

  it('keeps the last value of a repeated map key, as the spec says', () => {
    assert.deepEqual(decodePackStream(hex('A2 81 6B 01 81 6B 02')), map({ k: 2 }));
  });

  it('cannot be tricked into prototype keys', () => {
    const decoded = decodePackStream(encodePackStream(new Map<string, PackStreamValue>([['__proto__', 'x']])));
    assert.ok(decoded instanceof Map);
    assert.equal(decoded.get('__proto__'), 'x');
    assert.equal(Object.getPrototypeOf(decoded), Map.prototype);
  });

  it('fails with typed errors on garbage', () => {
    expectPackStreamError('truncated', () => decodePackStream(hex('')));
    expectPackStreamError('truncated', () => decodePackStream(hex('D0 05 41')));
    expectPackStreamError('truncated', () => decodePackStream(hex('D6 7F FF FF FF')));
    expectPackStreamError('truncated', () => decodePackStream(hex('CB 00 00')));
    expectPackStreamError('reserved-marker', () => decodePackStream(hex('C4')));
    expectPackStreamError('reserved-marker', () => decodePackStream(hex('E0 00')));
    expectPackStreamError('non-string-key', () => decodePackStream(hex('A1 01 01')));
    expectPackStreamError('trailing-bytes', () => decodePackStream(hex('C0 C0')));
    expectPackStreamError('not-a-struct', () => decodeBoltMessage(hex('90')));
    expectPackStreamError('too-deep', () => decodePackStream(Buffer.alloc(100, 0x91), { maxDepth: 10 }));
  });

  it('refuses values it cannot encode', () => {
    expectPackStreamError('unencodable-value', () => encodePackStream(2n ** 64n));
    expectPackStreamError('unencodable-value', () => encodePackStream(new PackStreamStruct(1, Array(16).fill(null))));
    const cycle: PackStreamValue[] = [];
    cycle.push(cycle);
    expectPackStreamError('too-deep', () => encodePackStream(cycle));
  });

  it('skips values of any depth without a depth limit', () => {
    const deep = Buffer.concat([Buffer.alloc(10_000, 0x91), hex('C0'), hex('2A')]);
    const reader = new PackStreamReader(deep, { maxDepth: 4 });
    reader.skipValue();
    assert.equal(reader.readValue(), 42);
  });

  it('reads selected metadata entries only, skipping fields and deep or foreign entries', () => {
    // 200 levels of {children: [...]}, deeper than the decoder's depth bound, as PROFILE metadata can be.
    const profile = Buffer.concat([
      Buffer.concat(Array.from({ length: 200 }, () => hex('A1 88 6368696C6472656E 91'))),
      hex('C0'),
    ]);
    const extra = Buffer.concat([
      hex('A4 87 70726F66696C65'),
      profile,
      encodePackStream('db'),
      encodePackStream('movies'),
      encodePackStream('mode'),
      encodePackStream('r'),
      encodePackStream('nested'),
      encodePackStream(map({ db: 'not me' })),
    ]);
    const payload = Buffer.concat([
      hex('B3 10'),
      encodePackStream('MATCH (n) RETURN n'),
      encodePackStream(map({ secret: 'p4ss' })),
      extra,
    ]);
    assert.deepEqual(readMessageMapEntries(payload, 2, new Set(['db', 'mode'])), map({ db: 'movies', mode: 'r' }));
    assert.equal(readMessageMapEntries(payload, 0, new Set(['db'])), null, 'field 0 is a string');
    assert.equal(readMessageMapEntries(payload, 3, new Set(['db'])), null, 'no field 3');
  });
});

describe('fast paths of the metadata reads', () => {
  function extraMap(entries: readonly [Buffer, Buffer][]): Buffer {
    const header =
      entries.length < 16 ? Buffer.from([0xa0 | entries.length]) : hex(`D8 ${entries.length.toString(16)}`);
    return Buffer.concat([hex('B1 70'), header, ...entries.flat()]);
  }
  const entry = (key: string | Buffer, value: PackStreamValue): [Buffer, Buffer] => [
    typeof key === 'string' ? encodePackStream(key) : key,
    encodePackStream(value),
  ];

  it('matches wanted keys by their bytes: same length, prefixes, longer keys, non-ASCII, duplicates', () => {
    const longKey = 'a_key_longer_than_fifteen_bytes';
    const payload = extraMap([
      entry('dc', 'same length, not wanted'),
      entry('d', 'prefix of db'),
      entry('dbx', 'db is its prefix'),
      entry('db', 'first'),
      entry('dé', 'non-ASCII key'),
      entry(longKey, 42),
      entry(hex('82 C3 28'), 'invalid UTF-8 of the length of db'),
      entry('db', 'last wins'),
    ]);
    assert.deepEqual(
      readMessageMapEntries(payload, 0, new Set(['db', 'dé', longKey, 'missing'])),
      map({ db: 'last wins', dé: 'non-ASCII key', [longKey]: 42 }),
    );
    assert.deepEqual(readMessageMapEntries(payload, 0, new Set<string>()), new Map());
  });

  it('still refuses a map key that is not a string, wanted or not', () => {
    const payload = Buffer.concat([hex('B1 70 A1'), encodePackStream(1), encodePackStream('x')]);
    expectPackStreamError('non-string-key', () => readMessageMapEntries(payload, 0, new Set(['db'])));
  });

  it('decodes short ASCII, non-ASCII and invalid UTF-8 strings as Buffer#toString does', () => {
    const texts = ['', 'neo4j', 'x'.repeat(31), 'y'.repeat(32), 'z'.repeat(33), 'héllo', 'データベース', '🙂'];
    for (const text of texts) assert.equal(decodePackStream(encodePackStream(text)), text);
    const invalid = hex('C3 28 41 FF');
    assert.equal(decodePackStream(Buffer.concat([hex('84'), invalid])), invalid.toString('utf8'));
  });

  it('reads 8-, 16- and 32-bit sizes, and a 32-bit size with its top bit set is truncated, not negative', () => {
    for (const length of [16, 255, 256, 65_535, 65_536]) {
      const text = 'q'.repeat(length);
      assert.equal(decodePackStream(encodePackStream(text)), text);
    }
    const list = Array.from({ length: 300 }, (_, index) => index);
    assert.deepEqual(decodePackStream(encodePackStream(list)), list);
    expectPackStreamError('truncated', () => decodePackStream(hex('D2 FF FF FF FF 41')));
    expectPackStreamError('truncated', () => decodePackStream(hex('D6 80 00 00 01 01')));
    expectPackStreamError('truncated', () => new PackStreamReader(hex('DA 80 00 00 00 80')).skipValue());
  });

  it('reads a short string field only within its length bounds', () => {
    const payload = Buffer.concat([hex('B2 10'), encodePackStream('RETURN 1'), encodePackStream(map({}))]);
    assert.equal(readMessageShortString(payload, 0, 256), 'RETURN 1');
    assert.equal(readMessageShortString(payload, 0, 256, 8), 'RETURN 1');
    assert.equal(readMessageShortString(payload, 0, 256, 9), null, 'shorter than minBytes');
    assert.equal(readMessageShortString(payload, 0, 7), null, 'longer than maxBytes');
    assert.equal(readMessageShortString(payload, 1, 256), null, 'not a string');
  });
});
