import { PackStreamError } from './errors.ts';
import { PackStreamFloat, type PackStreamMap, PackStreamStruct, type PackStreamValue } from './packstream-value.ts';

export interface PackStreamDecodeOptions {
  /** Nesting bound for materialised values (skipping is iterative and needs none); default 32. */
  readonly maxDepth?: number;
  /** Yield PackStreamFloat instead of number for floats, so that re-encoding keeps them floats. */
  readonly preserveFloats?: boolean;
}

export const DEFAULT_MAX_DEPTH = 32;

/** Strings up to this many bytes are decoded by hand when ASCII: cheaper than a Buffer slice for map keys and codes. */
const SHORT_ASCII_BYTES = 32;

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

enum Kind {
  Null,
  Boolean,
  Integer,
  Float,
  Bytes,
  String,
  List,
  Map,
  Struct,
}

/** What a marker announces, with the size fields already read. */
interface Header {
  kind: Kind;
  /** Items, entries or fields of a container; the value of a boolean or tiny integer. */
  size: number;
  /** Bytes of data right after the header: string/bytes content, or a wide integer's or float's width. */
  dataBytes: number;
}

/**
 * A cursor over one PackStream buffer. Every size read from the wire is checked against the bytes
 * left before anything is allocated (a value takes at least one byte), so garbage fails fast with a
 * PackStreamError instead of allocating or looping.
 */
export class PackStreamReader {
  readonly #bytes: Uint8Array;
  /** Made on first use: most reads (map keys, short strings, tiny ints) never need it. */
  #view: DataView | null = null;
  readonly #maxDepth: number;
  readonly #preserveFloats: boolean;
  #position = 0;
  readonly #header: Header = { kind: Kind.Null, size: 0, dataBytes: 0 };

  constructor(bytes: Uint8Array, options: PackStreamDecodeOptions = {}) {
    this.#bytes = bytes;
    this.#maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
    this.#preserveFloats = options.preserveFloats ?? false;
  }

  get position(): number {
    return this.#position;
  }

  get remaining(): number {
    return this.#bytes.length - this.#position;
  }

  readValue(): PackStreamValue {
    return this.#readValue(0);
  }

  /** Skips one value, however deeply nested, without materialising it. */
  skipValue(): void {
    let pending = 1;
    while (pending > 0) {
      pending--;
      const header = this.#readHeader();
      this.#position += header.dataBytes;
      switch (header.kind) {
        case Kind.List:
          pending += header.size;
          break;
        case Kind.Map:
          pending += 2 * header.size;
          break;
        case Kind.Struct:
          this.#need(1);
          this.#position += 1;
          pending += header.size;
          break;
        default:
          break;
      }
      // Every pending value needs a byte: a claim beyond that is garbage, caught before looping on it.
      if (pending > this.remaining) this.#truncated();
    }
  }

  /** Reads a struct marker and tag; the fields follow. */
  readStructHeader(): { readonly signature: number; readonly fieldCount: number } {
    const header = this.#readHeader();
    if (header.kind !== Kind.Struct) throw new PackStreamError('not-a-struct', 'expected a PackStream struct');
    const fieldCount = header.size;
    this.#need(1);
    const signature = this.#bytes[this.#position++] as number;
    return { signature, fieldCount };
  }

  /** Reads a map header and returns its entry count, or null (consuming the value) if the value is not a map. */
  readMapHeaderOrSkip(): number | null {
    const start = this.#position;
    const header = this.#readHeader();
    if (header.kind === Kind.Map) return header.size;
    this.#position = start;
    this.skipValue();
    return null;
  }

  /** Reads a string of minBytes to maxBytes bytes, or consumes whatever value is there and returns null. */
  readShortStringOrSkip(maxBytes: number, minBytes = 0): string | null {
    const start = this.#position;
    const header = this.#readHeader();
    if (header.kind === Kind.String && header.dataBytes <= maxBytes && header.dataBytes >= minBytes) {
      return this.#readUtf8(header.dataBytes);
    }
    this.#position = start;
    this.skipValue();
    return null;
  }

  readMapKey(): string {
    const header = this.#readHeader();
    if (header.kind !== Kind.String) throw new PackStreamError('non-string-key', 'map key is not a string');
    return this.#readUtf8(header.dataBytes);
  }

  /**
   * Reads a map key and returns it if it is one of `keys`, else null; either way the key is consumed.
   * Compares the key's bytes, so keys nobody asked for are never decoded into strings.
   */
  readMapKeyIfWanted(keys: KeyMatcher): string | null {
    const header = this.#readHeader();
    if (header.kind !== Kind.String) throw new PackStreamError('non-string-key', 'map key is not a string');
    const length = header.dataBytes;
    const start = this.#position;
    this.#position += length;
    const candidates = keys.byLength[length];
    if (candidates === undefined) return null;
    const bytes = this.#bytes;
    for (const candidate of candidates) {
      const wanted = candidate.bytes;
      let index = 0;
      while (index < length && bytes[start + index] === wanted[index]) index++;
      if (index === length) return candidate.key;
    }
    return null;
  }

  #readValue(depth: number): PackStreamValue {
    const header = this.#readHeader();
    const size = header.size;
    switch (header.kind) {
      case Kind.Null:
        return null;
      case Kind.Boolean:
        return size === 1;
      case Kind.Integer:
        return header.dataBytes === 0 ? size : this.#readWideInteger(header.dataBytes);
      case Kind.Float: {
        const value = this.#dataView().getFloat64(this.#position);
        this.#position += 8;
        return this.#preserveFloats ? new PackStreamFloat(value) : value;
      }
      case Kind.Bytes: {
        const byteCount = header.dataBytes;
        // A plain copy: neither a view pinning the whole payload nor a Buffer subclass.
        const value = new Uint8Array(this.#bytes.subarray(this.#position, this.#position + byteCount));
        this.#position += byteCount;
        return value;
      }
      case Kind.String:
        return this.#readUtf8(header.dataBytes);
      case Kind.List: {
        this.#enter(depth);
        const list: PackStreamValue[] = [];
        for (let index = 0; index < size; index++) list.push(this.#readValue(depth + 1));
        return list;
      }
      case Kind.Map: {
        this.#enter(depth);
        const map: PackStreamMap = new Map();
        for (let index = 0; index < size; index++) {
          const key = this.readMapKey();
          map.set(key, this.#readValue(depth + 1));
        }
        return map;
      }
      case Kind.Struct: {
        this.#enter(depth);
        this.#need(1);
        const signature = this.#bytes[this.#position++] as number;
        const fields: PackStreamValue[] = [];
        for (let index = 0; index < size; index++) fields.push(this.#readValue(depth + 1));
        return new PackStreamStruct(signature, fields);
      }
    }
  }

  #dataView(): DataView {
    const bytes = this.#bytes;
    this.#view ??= new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return this.#view;
  }

  #enter(depth: number): void {
    if (depth >= this.#maxDepth) {
      throw new PackStreamError('too-deep', `PackStream value nested deeper than ${this.#maxDepth}`);
    }
  }

  /** Reads a marker and any size field after it, checking that what they announce can fit. */
  #readHeader(): Header {
    this.#need(1);
    const marker = this.#bytes[this.#position++] as number;
    if (marker < 0x80) return this.#set(Kind.Integer, marker, 0);
    if (marker >= 0xf0) return this.#set(Kind.Integer, marker - 0x100, 0);
    const tinySize = marker & 0x0f;
    switch (marker & 0xf0) {
      case 0x80:
        return this.#data(Kind.String, tinySize);
      case 0x90:
        return this.#container(Kind.List, tinySize, tinySize);
      case 0xa0:
        return this.#container(Kind.Map, tinySize, 2 * tinySize);
      case 0xb0:
        return this.#container(Kind.Struct, tinySize, 1 + tinySize);
      default:
        break;
    }
    switch (marker) {
      case 0xc0:
        return this.#set(Kind.Null, 0, 0);
      case 0xc1:
        return this.#data(Kind.Float, 8);
      case 0xc2:
        return this.#set(Kind.Boolean, 0, 0);
      case 0xc3:
        return this.#set(Kind.Boolean, 1, 0);
      case 0xc8:
      case 0xc9:
      case 0xca:
      case 0xcb:
        return this.#data(Kind.Integer, 1 << (marker - 0xc8));
      case 0xcc:
      case 0xcd:
      case 0xce:
        return this.#data(Kind.Bytes, this.#readLength(marker - 0xcc));
      case 0xd0:
      case 0xd1:
      case 0xd2:
        return this.#data(Kind.String, this.#readLength(marker - 0xd0));
      case 0xd4:
      case 0xd5:
      case 0xd6: {
        const items = this.#readLength(marker - 0xd4);
        return this.#container(Kind.List, items, items);
      }
      case 0xd8:
      case 0xd9:
      case 0xda: {
        const entries = this.#readLength(marker - 0xd8);
        return this.#container(Kind.Map, entries, 2 * entries);
      }
      default:
        throw new PackStreamError(
          'reserved-marker',
          `reserved PackStream marker 0x${marker.toString(16)} at ${this.#position - 1}`,
        );
    }
  }

  #set(kind: Kind, size: number, dataBytes: number): Header {
    const header = this.#header;
    header.kind = kind;
    header.size = size;
    header.dataBytes = dataBytes;
    return header;
  }

  /** A value whose data bytes follow the header: they must be there. */
  #data(kind: Kind, dataBytes: number): Header {
    this.#need(dataBytes);
    return this.#set(kind, 0, dataBytes);
  }

  /** A container: each value in it (and a struct's tag) takes one byte at least. */
  #container(kind: Kind, size: number, minimumBytes: number): Header {
    this.#need(minimumBytes);
    return this.#set(kind, size, 0);
  }

  /** Reads the 8-, 16- or 32-bit unsigned size after a marker (widthCode 0, 1, 2). */
  #readLength(widthCode: number): number {
    const width = 1 << widthCode;
    this.#need(width);
    const position = this.#position;
    const bytes = this.#bytes;
    this.#position += width;
    if (width === 1) return bytes[position] as number;
    if (width === 2) return ((bytes[position] as number) << 8) | (bytes[position + 1] as number);
    return (
      (bytes[position] as number) * 0x1000000 +
      (((bytes[position + 1] as number) << 16) |
        ((bytes[position + 2] as number) << 8) |
        (bytes[position + 3] as number))
    );
  }

  #readWideInteger(width: number): number | bigint {
    const position = this.#position;
    const view = this.#dataView();
    this.#position += width;
    switch (width) {
      case 1:
        return view.getInt8(position);
      case 2:
        return view.getInt16(position);
      case 4:
        return view.getInt32(position);
      default: {
        const value = view.getBigInt64(position);
        return value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : value;
      }
    }
  }

  #readUtf8(byteCount: number): string {
    const start = this.#position;
    const bytes = this.#bytes;
    this.#position += byteCount;
    if (byteCount <= SHORT_ASCII_BYTES) {
      let text = '';
      let index = start;
      const end = start + byteCount;
      while (index < end) {
        const byte = bytes[index] as number;
        if (byte >= 0x80) break;
        text += String.fromCharCode(byte);
        index++;
      }
      if (index === end) return text;
    }
    return Buffer.prototype.toString.call(bytes, 'utf8', start, start + byteCount);
  }

  #need(byteCount: number): void {
    if (byteCount > this.remaining) this.#truncated();
  }

  #truncated(): never {
    throw new PackStreamError('truncated', `PackStream value truncated at byte ${this.#position}`);
  }
}

/** Decodes exactly one value filling the whole buffer. */
export function decodePackStream(bytes: Uint8Array, options?: PackStreamDecodeOptions): PackStreamValue {
  const reader = new PackStreamReader(bytes, options);
  const value = reader.readValue();
  if (reader.remaining !== 0) {
    throw new PackStreamError('trailing-bytes', `${reader.remaining} bytes after the PackStream value`);
  }
  return value;
}

/** Decodes a dechunked Bolt message into its signature and fields. */
export function decodeBoltMessage(payload: Uint8Array, options?: PackStreamDecodeOptions): PackStreamStruct {
  const value = decodePackStream(payload, options);
  if (!(value instanceof PackStreamStruct)) throw new PackStreamError('not-a-struct', 'a Bolt message is a struct');
  return value;
}

/** A set of map keys in matchable form: their UTF-8 bytes grouped by length. */
export interface KeyMatcher {
  readonly byLength: ReadonlyArray<ReadonlyArray<{ readonly key: string; readonly bytes: Uint8Array }> | undefined>;
}

const keyMatchers = new WeakMap<ReadonlySet<string>, KeyMatcher>();

/** The matcher for a key set, built once per set (callers pass the same constant sets every time). */
export function keyMatcher(keys: ReadonlySet<string>): KeyMatcher {
  let matcher = keyMatchers.get(keys);
  if (matcher === undefined) {
    const byLength: { key: string; bytes: Uint8Array }[][] = [];
    for (const key of keys) {
      const bytes = Buffer.from(key, 'utf8');
      const sameLength = byLength[bytes.length] ?? [];
      sameLength.push({ key, bytes });
      byLength[bytes.length] = sameLength;
    }
    matcher = { byLength };
    keyMatchers.set(keys, matcher);
  }
  return matcher;
}

/**
 * Reads only the wanted top-level entries of the map in field `fieldIndex` of a message; every other
 * field and entry is skipped unmaterialised, and the keys of skipped entries are compared as bytes,
 * never decoded. That keeps query text, parameters and credentials out of memory, and lets deep plan
 * or profile metadata pass without a depth limit.
 * Returns null when the message has no such field or it is not a map.
 */
export function readMessageMapEntries(
  payload: Uint8Array,
  fieldIndex: number,
  wantedKeys: ReadonlySet<string>,
  options?: PackStreamDecodeOptions,
): PackStreamMap | null {
  const reader = new PackStreamReader(payload, options);
  const { fieldCount } = reader.readStructHeader();
  if (fieldIndex >= fieldCount) return null;
  for (let index = 0; index < fieldIndex; index++) reader.skipValue();
  const entryCount = reader.readMapHeaderOrSkip();
  if (entryCount === null) return null;
  const matcher = keyMatcher(wantedKeys);
  const entries: PackStreamMap = new Map();
  for (let index = 0; index < entryCount; index++) {
    const key = reader.readMapKeyIfWanted(matcher);
    if (key !== null) entries.set(key, reader.readValue());
    else reader.skipValue();
  }
  return entries;
}

/**
 * Reads field `fieldIndex` of a message if it is a string of minBytes to maxBytes bytes; returns null
 * for anything else, without materialising it.
 */
export function readMessageShortString(
  payload: Uint8Array,
  fieldIndex: number,
  maxBytes: number,
  minBytes = 0,
): string | null {
  const reader = new PackStreamReader(payload);
  const { fieldCount } = reader.readStructHeader();
  if (fieldIndex >= fieldCount) return null;
  for (let index = 0; index < fieldIndex; index++) reader.skipValue();
  return reader.readShortStringOrSkip(maxBytes, minBytes);
}
