import { BoltHandshakeError } from './errors.ts';

export interface BoltVersion {
  readonly major: number;
  readonly minor: number;
}

/** Versions major.minMinor up to major.maxMinor; a range never spans majors. */
export interface BoltVersionRange {
  readonly major: number;
  readonly maxMinor: number;
  readonly minMinor: number;
}

export type BoltVersionOffer =
  | { readonly kind: 'versions'; readonly range: BoltVersionRange }
  | { readonly kind: 'manifest'; readonly manifestVersion: number }
  | { readonly kind: 'empty' };

export type HandshakeProgress =
  | { readonly state: 'incomplete' }
  /** leftover: bytes after this side's handshake, i.e. the start of its chunked message stream. */
  | { readonly state: 'complete'; readonly leftover: Buffer };

export type ServerHandshakeProgress = HandshakeProgress | { readonly state: 'no-match'; readonly leftover: Buffer };

export type HandshakeOutcome = 'pending' | 'agreed' | 'no-match';

export const BOLT_MAGIC = Buffer.from([0x60, 0x60, 0xb0, 0x17]);
const MANIFEST_MARKER = 0xff;
const SUPPORTED_MANIFEST_VERSION = 1;
const OFFER_COUNT = 4;
/** Real servers announce a handful of ranges; the bound keeps a hostile peer from making us allocate. */
const MAX_MANIFEST_RANGES = 64;
/** A client never sends before the server answers; tolerate a little, refuse a flood. */
const MAX_EARLY_CLIENT_BYTES = 1024;
const MAX_VARINT_BYTES = 10;
const EMPTY = Buffer.alloc(0);
const TLS_HANDSHAKE_RECORD = 0x16;
const TLS_MAJOR_VERSION = 0x03;

export function formatBoltVersion(version: BoltVersion): string {
  return `${version.major}.${version.minor}`;
}

/** Decodes the 4-byte [reserved, range, minor, major] form used by client offers and manifest entries. */
export function decodeVersionOffer(bytes: Uint8Array, offset = 0): BoltVersionOffer {
  const range = bytes[offset + 1] ?? 0;
  const minor = bytes[offset + 2] ?? 0;
  const major = bytes[offset + 3] ?? 0;
  if (major === MANIFEST_MARKER) return { kind: 'manifest', manifestVersion: minor };
  if (major === 0 && minor === 0 && range === 0) return { kind: 'empty' };
  return { kind: 'versions', range: { major, maxMinor: minor, minMinor: Math.max(0, minor - range) } };
}

/** An unsigned varint as the handshake writes it (capabilities, range count): 7 bits a byte, least significant first. */
export function encodeVarint(value: bigint): Buffer {
  if (value < 0n) throw new RangeError(`a handshake varint is unsigned, not ${value}`);
  const bytes: number[] = [];
  let rest = value;
  do {
    const low = Number(rest & 0x7fn);
    rest >>= 7n;
    bytes.push(rest > 0n ? low | 0x80 : low);
  } while (rest > 0n);
  return Buffer.from(bytes);
}

/** The server's answer to a manifest v1 offer: marker, range count, the ranges, then the capabilities. */
export function encodeManifestAnswer(ranges: readonly BoltVersionRange[], capabilities: bigint): Buffer {
  const entries = Buffer.alloc(4 * ranges.length);
  ranges.forEach((range, index) => {
    entries.set([0, range.maxMinor - range.minMinor, range.maxMinor, range.major], 4 * index);
  });
  return Buffer.concat([
    Buffer.from([0, 0, SUPPORTED_MANIFEST_VERSION, MANIFEST_MARKER]),
    encodeVarint(BigInt(ranges.length)),
    entries,
    encodeVarint(capabilities),
  ]);
}

/** Collects exactly `size` bytes across any number of reads. */
class FixedBytes {
  readonly bytes: Buffer;
  #filled = 0;
  constructor(size: number) {
    this.bytes = Buffer.alloc(size);
  }
  get complete(): boolean {
    return this.#filled === this.bytes.length;
  }
  get filled(): number {
    return this.#filled;
  }
  /** Returns the position in data after what was taken. */
  take(data: Uint8Array, position: number): number {
    const count = Math.min(this.bytes.length - this.#filled, data.length - position);
    this.bytes.set(data.subarray(position, position + count), this.#filled);
    this.#filled += count;
    return position + count;
  }
}

/** An unsigned LEB128-style varint (7 bits a byte, least significant first) read across reads. */
class VarintReader {
  #value = 0n;
  #byteCount = 0;
  #done = false;
  get complete(): boolean {
    return this.#done;
  }
  get value(): bigint {
    return this.#value;
  }
  take(data: Uint8Array, position: number): number {
    let cursor = position;
    while (!this.#done && cursor < data.length) {
      if (this.#byteCount === MAX_VARINT_BYTES) {
        throw new BoltHandshakeError('varint-overflow', 'handshake varint is longer than 64 bits');
      }
      const byte = data[cursor++] ?? 0;
      this.#value |= BigInt(byte & 0x7f) << BigInt(7 * this.#byteCount);
      this.#byteCount++;
      this.#done = (byte & 0x80) === 0;
    }
    return cursor;
  }
}

type ClientStage = 'magic' | 'offers' | 'awaiting-server' | 'chosen-version' | 'chosen-capabilities' | 'done';
type ServerStage = 'version' | 'range-count' | 'ranges' | 'capabilities' | 'done' | 'no-match';

/**
 * Follows both directions of one connection's version negotiation, incrementally: bytes may be split
 * anywhere or arrive coalesced with the first chunked messages, which come back as `leftover`.
 *
 * Ordering contract: feed the server's answer before the client bytes the client sent after receiving
 * it (a proxy does so naturally, since it forwards the answer to the client).
 */
export class BoltHandshake {
  #clientStage: ClientStage = 'magic';
  #serverStage: ServerStage = 'version';
  #magic = new FixedBytes(4);
  #offerBytes = new FixedBytes(4 * OFFER_COUNT);
  #chosenVersionBytes = new FixedBytes(4);
  #clientCapabilitiesReader = new VarintReader();
  #earlyClientBytes: Buffer[] = [];
  #earlyClientByteCount = 0;
  #serverVersionBytes = new FixedBytes(4);
  #rangeCountReader = new VarintReader();
  #rangeBytes: FixedBytes | null = null;
  #serverCapabilitiesReader = new VarintReader();

  #offers: BoltVersionOffer[] | null = null;
  #serverRanges: BoltVersionRange[] | null = null;
  #serverCapabilities: bigint | null = null;
  #clientCapabilities: bigint | null = null;
  #negotiated: BoltVersion | null = null;
  #serverChoseManifest = false;

  /** The client's four offers in preference order, once all 20 bytes arrived. */
  get clientOffers(): readonly BoltVersionOffer[] | null {
    return this.#offers;
  }
  /** Version ranges the server announced in a manifest answer. */
  get serverVersionRanges(): readonly BoltVersionRange[] | null {
    return this.#serverRanges;
  }
  get serverCapabilities(): bigint | null {
    return this.#serverCapabilities;
  }
  get clientCapabilities(): bigint | null {
    return this.#clientCapabilities;
  }
  get usedManifest(): boolean {
    return this.#serverChoseManifest;
  }
  get negotiatedVersion(): BoltVersion | null {
    return this.#negotiated;
  }
  get outcome(): HandshakeOutcome {
    if (this.#serverStage === 'no-match') return 'no-match';
    return this.#negotiated !== null && this.#clientStage === 'done' && this.#serverStage === 'done'
      ? 'agreed'
      : 'pending';
  }
  get clientComplete(): boolean {
    return this.#clientStage === 'done';
  }
  get serverComplete(): boolean {
    return this.#serverStage === 'done' || this.#serverStage === 'no-match';
  }

  feedClient(data: Uint8Array): HandshakeProgress {
    let position = 0;
    if (this.#clientStage === 'done') return complete(this.#takeEarlyClientBytes(data, 0), 0);
    if (this.#clientStage === 'magic') {
      position = this.#magic.take(data, position);
      if (!this.#magic.complete) return INCOMPLETE;
      checkMagic(this.#magic.bytes);
      this.#clientStage = 'offers';
    }
    if (this.#clientStage === 'offers') {
      position = this.#offerBytes.take(data, position);
      if (!this.#offerBytes.complete) return INCOMPLETE;
      this.#offers = decodeOffers(this.#offerBytes.bytes);
      this.#clientStage = 'awaiting-server';
      this.#advanceClientPastServerAnswer();
    }
    if (this.#clientStage === 'awaiting-server') {
      this.#holdEarlyClientBytes(data.subarray(position));
      return INCOMPLETE;
    }
    // Bytes held while the server's answer was unknown come first.
    const input = this.#takeEarlyClientBytes(data, position);
    position = input === data ? position : 0;
    if (this.#clientStage === 'chosen-version') {
      position = this.#chosenVersionBytes.take(input, position);
      if (!this.#chosenVersionBytes.complete) return INCOMPLETE;
      const chosen = this.#chosenVersionBytes.bytes;
      this.#negotiated = { major: chosen[3] ?? 0, minor: chosen[2] ?? 0 };
      this.#clientStage = 'chosen-capabilities';
    }
    if (this.#clientStage === 'chosen-capabilities') {
      position = this.#clientCapabilitiesReader.take(input, position);
      if (!this.#clientCapabilitiesReader.complete) return INCOMPLETE;
      this.#clientCapabilities = this.#clientCapabilitiesReader.value;
      this.#clientStage = 'done';
    }
    return complete(input, position);
  }

  feedServer(data: Uint8Array): ServerHandshakeProgress {
    let position = 0;
    if (this.#serverStage === 'done') return complete(data, 0);
    if (this.#serverStage === 'no-match') return { state: 'no-match', leftover: copyOf(data, 0) };
    if (this.#serverStage === 'version') {
      position = this.#serverVersionBytes.take(data, position);
      if (!this.#serverVersionBytes.complete) return INCOMPLETE;
      const answer = this.#serverVersionBytes.bytes;
      if (isAscii(answer, 'HTTP')) {
        throw new BoltHandshakeError('http-response', 'the server answered with HTTP: the upstream is not a Bolt port');
      }
      const offer = decodeVersionOffer(answer);
      if (offer.kind === 'empty') {
        this.#serverStage = 'no-match';
        this.#advanceClientPastServerAnswer();
        return { state: 'no-match', leftover: copyOf(data, position) };
      }
      if (offer.kind === 'manifest') {
        if (offer.manifestVersion !== SUPPORTED_MANIFEST_VERSION || answer[0] !== 0 || answer[1] !== 0) {
          throw new BoltHandshakeError('unsupported-manifest', `unsupported handshake manifest ${hex(answer)}`);
        }
        this.#serverChoseManifest = true;
        this.#serverStage = 'range-count';
      } else {
        if (answer[0] !== 0 || answer[1] !== 0) {
          throw new BoltHandshakeError('invalid-server-version', `server answered ${hex(answer)}, not a Bolt version`);
        }
        this.#negotiated = { major: offer.range.major, minor: offer.range.maxMinor };
        this.#serverStage = 'done';
        this.#advanceClientPastServerAnswer();
        return complete(data, position);
      }
    }
    if (this.#serverStage === 'range-count') {
      position = this.#rangeCountReader.take(data, position);
      if (!this.#rangeCountReader.complete) return INCOMPLETE;
      const count = this.#rangeCountReader.value;
      if (count > BigInt(MAX_MANIFEST_RANGES)) {
        throw new BoltHandshakeError('manifest-too-large', `server announced ${count} version ranges`);
      }
      this.#rangeBytes = new FixedBytes(4 * Number(count));
      this.#serverStage = 'ranges';
    }
    if (this.#serverStage === 'ranges' && this.#rangeBytes !== null) {
      position = this.#rangeBytes.take(data, position);
      if (!this.#rangeBytes.complete) return INCOMPLETE;
      this.#serverRanges = decodeRanges(this.#rangeBytes.bytes);
      this.#serverStage = 'capabilities';
    }
    if (this.#serverStage === 'capabilities') {
      position = this.#serverCapabilitiesReader.take(data, position);
      if (!this.#serverCapabilitiesReader.complete) return INCOMPLETE;
      this.#serverCapabilities = this.#serverCapabilitiesReader.value;
      this.#serverStage = 'done';
      this.#advanceClientPastServerAnswer();
    }
    return complete(data, position);
  }

  /** Once both the client's offers and the server's answer are known, the client knows what it must still send. */
  #advanceClientPastServerAnswer(): void {
    if (this.#clientStage !== 'awaiting-server') return;
    if (this.#serverStage === 'no-match') {
      this.#clientStage = 'done';
    } else if (this.#serverChoseManifest && this.#serverStage === 'done') {
      this.#clientStage = 'chosen-version';
    } else if (this.#serverStage === 'done') {
      this.#clientStage = 'done';
    } else if (!offersManifest(this.#offers)) {
      // Without a manifest offer the client has nothing more to send, whatever the server answers.
      this.#clientStage = 'done';
    }
  }

  #holdEarlyClientBytes(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#earlyClientByteCount += bytes.length;
    if (this.#earlyClientByteCount > MAX_EARLY_CLIENT_BYTES) {
      throw new BoltHandshakeError(
        'unexpected-client-bytes',
        `client sent ${this.#earlyClientByteCount} bytes before the server answered the version negotiation`,
      );
    }
    this.#earlyClientBytes.push(Buffer.from(bytes));
  }

  #takeEarlyClientBytes(data: Uint8Array, position: number): Uint8Array {
    if (this.#earlyClientBytes.length === 0) return data;
    const held = this.#earlyClientBytes;
    this.#earlyClientBytes = [];
    this.#earlyClientByteCount = 0;
    return Buffer.concat([...held, data.subarray(position)]);
  }
}

const INCOMPLETE: HandshakeProgress = { state: 'incomplete' };

function complete(data: Uint8Array, position: number): HandshakeProgress {
  return { state: 'complete', leftover: copyOf(data, position) };
}

/** Leftover is copied so that it stays valid if the caller reuses its read buffer. */
function copyOf(data: Uint8Array, position: number): Buffer {
  return position >= data.length ? EMPTY : Buffer.from(data.subarray(position));
}

function checkMagic(magic: Buffer): void {
  if (magic.equals(BOLT_MAGIC)) return;
  if (magic[0] === TLS_HANDSHAKE_RECORD && magic[1] === TLS_MAJOR_VERSION) {
    throw new BoltHandshakeError('tls-client-hello', 'client started a TLS handshake on a plain Bolt port');
  }
  if (looksLikeHttpMethod(magic)) {
    throw new BoltHandshakeError(
      'http-request',
      `client spoke HTTP ("${magic.toString('latin1')}...") to the Bolt port`,
    );
  }
  throw new BoltHandshakeError('bad-magic', `client sent ${hex(magic)} instead of the Bolt magic 60 60 B0 17`);
}

/** Method names are upper-case letters (GET, POST, OPTIONS...), followed by a space when shorter than 4. */
function looksLikeHttpMethod(bytes: Buffer): boolean {
  let sawSpace = false;
  for (const byte of bytes) {
    if (byte === 0x20 && !sawSpace) sawSpace = true;
    else if (sawSpace || byte < 0x41 || byte > 0x5a) return false;
  }
  return bytes[0] !== 0x20;
}

function decodeOffers(bytes: Buffer): BoltVersionOffer[] {
  const offers: BoltVersionOffer[] = [];
  for (let index = 0; index < OFFER_COUNT; index++) offers.push(decodeVersionOffer(bytes, 4 * index));
  return offers;
}

function decodeRanges(bytes: Buffer): BoltVersionRange[] {
  const ranges: BoltVersionRange[] = [];
  for (let offset = 0; offset < bytes.length; offset += 4) {
    const offer = decodeVersionOffer(bytes, offset);
    if (offer.kind === 'versions') ranges.push(offer.range);
  }
  return ranges;
}

function offersManifest(offers: readonly BoltVersionOffer[] | null): boolean {
  return offers?.some((offer) => offer.kind === 'manifest') ?? false;
}

function isAscii(bytes: Buffer, text: string): boolean {
  return bytes.toString('latin1') === text;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes)
    .toString('hex')
    .replace(/(..)(?!$)/g, '$1 ')
    .toUpperCase();
}
