import {
  BoltDechunker,
  type BoltDechunkerOptions,
  type BoltMessageFrame,
  chunkMessage,
  encodePackStream,
  PackStreamStruct,
  type PackStreamValue,
} from '../../../src/proxy/bolt/index.ts';

export { map, routingTable } from '../../support/raw-bolt.ts';

/** Bytes from a spaced hex string with optional '|' separators: 'B1 70 | A0'. */
export function hex(text: string): Buffer {
  return Buffer.from(text.replace(/[\s|]/g, ''), 'hex');
}

/** A dechunked message: struct marker, signature, fields. */
export function payloadOf(signature: number, ...fields: PackStreamValue[]): Buffer {
  return encodePackStream(new PackStreamStruct(signature, fields));
}

/** A message as it travels: chunked, end marker included. */
export function wireOf(signature: number, ...fields: PackStreamValue[]): Buffer {
  return chunkMessage(payloadOf(signature, ...fields));
}

export function dechunkAll(
  reads: readonly Uint8Array[],
  options: Omit<BoltDechunkerOptions, 'onMessage'> = {},
): BoltMessageFrame[] {
  const frames: BoltMessageFrame[] = [];
  const dechunker = new BoltDechunker({ ...options, onMessage: (frame) => frames.push(frame) });
  for (const read of reads) dechunker.feed(read);
  return frames;
}

/** Splits bytes at the given offsets (sorted, deduplicated, clamped). */
export function splitAt(bytes: Uint8Array, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((cut) => Math.max(0, Math.min(bytes.length, cut))))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let previous = 0;
  for (const point of [...points, bytes.length]) {
    pieces.push(Buffer.from(bytes.subarray(previous, point)));
    previous = point;
  }
  return pieces;
}

/** Every split of bytes into single-byte reads. */
export function byteByByte(bytes: Uint8Array): Buffer[] {
  return [...bytes].map((byte) => Buffer.from([byte]));
}

/** Number of fuzz inputs for the whole suite; BOLT_FUZZ_RUNS overrides (npm run fuzz:bolt uses 1,000,000). */
export function fuzzBudget(defaultTotal: number): number {
  const configured = Number(process.env.BOLT_FUZZ_RUNS);
  return Number.isFinite(configured) && configured > 0 ? Math.floor(configured) : defaultTotal;
}
