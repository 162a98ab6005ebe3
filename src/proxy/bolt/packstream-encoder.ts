import { PackStreamError } from './errors.ts';
import { DEFAULT_MAX_DEPTH } from './packstream-decoder.ts';
import { PackStreamFloat, type PackStreamMap, PackStreamStruct, type PackStreamValue } from './packstream-value.ts';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const TWO_POW_63 = 2 ** 63;
const MAX_STRUCT_FIELDS = 15;
const MAX_SIZE_32 = 0x7fffffff;

/** A growable output buffer: one allocation per doubling, not per value. */
class ByteWriter {
  #buffer = Buffer.allocUnsafe(256);
  #length = 0;

  #reserve(extra: number): void {
    const needed = this.#length + extra;
    if (needed <= this.#buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(needed, this.#buffer.length * 2));
    this.#buffer.copy(grown, 0, 0, this.#length);
    this.#buffer = grown;
  }
  byte(value: number): void {
    this.#reserve(1);
    this.#buffer[this.#length++] = value;
  }
  uint16(value: number): void {
    this.#reserve(2);
    this.#length = this.#buffer.writeUInt16BE(value, this.#length);
  }
  uint32(value: number): void {
    this.#reserve(4);
    this.#length = this.#buffer.writeUInt32BE(value, this.#length);
  }
  int8(value: number): void {
    this.#reserve(1);
    this.#length = this.#buffer.writeInt8(value, this.#length);
  }
  int16(value: number): void {
    this.#reserve(2);
    this.#length = this.#buffer.writeInt16BE(value, this.#length);
  }
  int32(value: number): void {
    this.#reserve(4);
    this.#length = this.#buffer.writeInt32BE(value, this.#length);
  }
  int64(value: bigint): void {
    this.#reserve(8);
    this.#length = this.#buffer.writeBigInt64BE(value, this.#length);
  }
  float64(value: number): void {
    this.#reserve(8);
    this.#length = this.#buffer.writeDoubleBE(value, this.#length);
  }
  bytes(value: Uint8Array): void {
    this.#reserve(value.length);
    this.#buffer.set(value, this.#length);
    this.#length += value.length;
  }
  utf8(value: string, byteLength: number): void {
    this.#reserve(byteLength);
    this.#length += this.#buffer.write(value, this.#length, 'utf8');
  }
  result(): Buffer {
    return this.#buffer.subarray(0, this.#length);
  }
}

/**
 * Encodes PackStream v1 in the most compact form. Numbers that are integers within 64 bits become
 * integers and other numbers floats; wrap a value in PackStreamFloat to force a float.
 */
export function encodePackStream(value: PackStreamValue): Buffer {
  const writer = new ByteWriter();
  writeValue(writer, value, 0);
  return writer.result();
}

function writeValue(writer: ByteWriter, value: PackStreamValue, depth: number): void {
  if (value === null) {
    writer.byte(0xc0);
  } else if (typeof value === 'boolean') {
    writer.byte(value ? 0xc3 : 0xc2);
  } else if (typeof value === 'number') {
    writeNumber(writer, value);
  } else if (typeof value === 'bigint') {
    writeBigInt(writer, value);
  } else if (typeof value === 'string') {
    writeString(writer, value);
  } else if (value instanceof PackStreamFloat) {
    writer.byte(0xc1);
    writer.float64(value.value);
  } else if (value instanceof Uint8Array) {
    writeSize(writer, value.length, 0xcc, 0xcc);
    writer.bytes(value);
  } else {
    writeComposite(writer, value, depth);
  }
}

function writeComposite(
  writer: ByteWriter,
  value: PackStreamValue[] | PackStreamMap | PackStreamStruct,
  depth: number,
): void {
  if (depth >= DEFAULT_MAX_DEPTH) {
    throw new PackStreamError('too-deep', `value nested deeper than ${DEFAULT_MAX_DEPTH} (a cycle?)`);
  }
  if (Array.isArray(value)) {
    writeSize(writer, value.length, 0x90, 0xd4);
    for (const item of value) writeValue(writer, item, depth + 1);
  } else if (value instanceof Map) {
    writeSize(writer, value.size, 0xa0, 0xd8);
    for (const [key, item] of value) {
      if (typeof key !== 'string') throw new PackStreamError('unencodable-value', 'map keys must be strings');
      writeString(writer, key);
      writeValue(writer, item, depth + 1);
    }
  } else if (value instanceof PackStreamStruct) {
    const { signature, fields } = value;
    if (fields.length > MAX_STRUCT_FIELDS || !Number.isInteger(signature) || signature < 0 || signature > 0xff) {
      throw new PackStreamError('unencodable-value', 'a struct has at most 15 fields and a one-byte signature');
    }
    writer.byte(0xb0 | fields.length);
    writer.byte(signature);
    for (const field of fields) writeValue(writer, field, depth + 1);
  } else {
    throw new PackStreamError('unencodable-value', `cannot encode ${typeof value} as PackStream`);
  }
}

function writeNumber(writer: ByteWriter, value: number): void {
  if (Number.isInteger(value) && value >= -TWO_POW_63 && value < TWO_POW_63) {
    writeInteger(writer, value);
  } else {
    writer.byte(0xc1);
    writer.float64(value);
  }
}

function writeBigInt(writer: ByteWriter, value: bigint): void {
  if (value < INT64_MIN || value > INT64_MAX) {
    throw new PackStreamError('unencodable-value', `integer ${value} does not fit in 64 bits`);
  }
  if (value >= -(2n ** 31n) && value < 2n ** 31n) {
    writeInteger(writer, Number(value));
  } else {
    writer.byte(0xcb);
    writer.int64(value);
  }
}

function writeInteger(writer: ByteWriter, value: number): void {
  if (value >= -16 && value <= 127) {
    writer.byte(value & 0xff);
  } else if (value >= -128 && value <= 127) {
    writer.byte(0xc8);
    writer.int8(value);
  } else if (value >= -32768 && value <= 32767) {
    writer.byte(0xc9);
    writer.int16(value);
  } else if (value >= -2147483648 && value <= 2147483647) {
    writer.byte(0xca);
    writer.int32(value);
  } else {
    writer.byte(0xcb);
    writer.int64(BigInt(value));
  }
}

function writeString(writer: ByteWriter, value: string): void {
  const byteLength = Buffer.byteLength(value, 'utf8');
  writeSize(writer, byteLength, 0x80, 0xd0);
  writer.utf8(value, byteLength);
}

/** Tiny form (size in the marker's low nibble) below 16 when the type has one, else 8/16/32-bit sizes. */
function writeSize(writer: ByteWriter, size: number, tinyMarker: number, sizedMarker: number): void {
  if (size > MAX_SIZE_32) throw new PackStreamError('unencodable-value', `size ${size} exceeds PackStream's limit`);
  const hasTinyForm = tinyMarker !== sizedMarker;
  if (hasTinyForm && size < 16) {
    writer.byte(tinyMarker | size);
  } else if (size <= 0xff) {
    writer.byte(sizedMarker);
    writer.byte(size);
  } else if (size <= 0xffff) {
    writer.byte(sizedMarker + 1);
    writer.uint16(size);
  } else {
    writer.byte(sizedMarker + 2);
    writer.uint32(size);
  }
}
