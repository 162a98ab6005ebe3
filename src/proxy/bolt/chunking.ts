import { BoltFramingError } from './errors.ts';

/** One complete Bolt message observed in a chunked stream. */
export interface BoltMessageFrame {
  /** The struct tag: which message this is (see BoltSignature). */
  readonly signature: number;
  /** Low nibble of the struct marker: how many fields the message has. */
  readonly fieldCount: number;
  /**
   * The whole dechunked message (struct marker, signature, fields), owned by the receiver; null when the
   * caller did not ask to keep this signature or (oversizedPayload 'drop') it was too large.
   */
  readonly payload: Buffer | null;
  /** True when the payload was wanted but exceeded maxPayloadBytes under oversizedPayload 'drop'. */
  readonly payloadDropped: boolean;
  /** Dechunked size in bytes. */
  readonly size: number;
  /** Offset, in the bytes fed to this dechunker, of the message's first chunk header. */
  readonly wireStart: number;
  /** Offset just after the message's 00 00 end marker: [wireStart, wireEnd) is the message on the wire. */
  readonly wireEnd: number;
}

export interface BoltDechunkerOptions {
  readonly onMessage: (frame: BoltMessageFrame) => void;
  /**
   * Whether to keep the payload of messages with this signature. Asked once per message, as soon as its
   * signature is seen; everything else is only counted, so multi-megabyte RECORDs cost no memory.
   */
  readonly keepPayload?: (signature: number) => boolean;
  /** Bound on a kept payload; default 16 MiB. */
  readonly maxPayloadBytes?: number;
  /** 'error' (default): a kept payload over the bound throws BoltFramingError. 'drop': the frame comes without it. */
  readonly oversizedPayload?: 'error' | 'drop';
}

export const DEFAULT_MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;
export const MAX_CHUNK_SIZE = 0xffff;

enum Phase {
  HeaderHigh = 0,
  HeaderLow = 1,
  ChunkBody = 2,
}

const NO_MESSAGE = -1;
const NO_SIGNATURE = -1;
const keepNothing = (): boolean => false;
/** Up to this many bytes a payload is copied byte by byte rather than through a subarray view. */
const SMALL_COPY_BYTES = 64;

/**
 * Streaming dechunker for one direction of a Bolt connection. It only observes: the proxy forwards the
 * original bytes itself. Work per read is proportional to the number of chunk headers in it; bodies of
 * messages nobody asked for are skipped by arithmetic, and kept payloads are copied once into a buffer
 * sized from the chunk headers, never concatenated per chunk.
 */
export class BoltDechunker {
  readonly #onMessage: (frame: BoltMessageFrame) => void;
  readonly #keepPayload: (signature: number) => boolean;
  readonly #maxPayloadBytes: number;
  readonly #dropOversized: boolean;

  #phase: Phase = Phase.HeaderHigh;
  #headerHigh = 0;
  #headerStart = 0;
  #chunkRemaining = 0;
  #bytesFed = 0;
  #noopCount = 0;
  #failure: BoltFramingError | null = null;

  #messageStart = NO_MESSAGE;
  #messageSize = 0;
  #marker = 0;
  #signature = NO_SIGNATURE;
  #keeping = false;
  #dropped = false;
  #payload: Buffer | null = null;

  constructor(options: BoltDechunkerOptions) {
    this.#onMessage = options.onMessage;
    this.#keepPayload = options.keepPayload ?? keepNothing;
    this.#maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    this.#dropOversized = options.oversizedPayload === 'drop';
  }

  get bytesFed(): number {
    return this.#bytesFed;
  }

  /** Empty chunks seen between messages (keep-alives). */
  get noopCount(): number {
    return this.#noopCount;
  }

  /**
   * Offset where the message (or chunk header) still being received began, or null at a message boundary.
   * A proxy that may replace a message forwards only the bytes before this offset until the frame arrives.
   */
  get pendingMessageStart(): number | null {
    if (this.#messageStart !== NO_MESSAGE) return this.#messageStart;
    return this.#phase === Phase.HeaderLow ? this.#headerStart : null;
  }

  /**
   * Signature of the message still being received, once its second byte arrived. With it a proxy holds
   * back only messages it may replace (say, while keepPayload would keep them) and streams the rest.
   */
  get pendingMessageSignature(): number | null {
    return this.#signature === NO_SIGNATURE ? null : this.#signature;
  }

  feed(data: Uint8Array): void {
    if (this.#failure !== null) {
      throw new BoltFramingError('stream-failed', `stream already failed: ${this.#failure.message}`);
    }
    try {
      this.#consume(data);
    } catch (error) {
      this.#failure =
        error instanceof BoltFramingError ? error : new BoltFramingError('stream-failed', 'message handler threw');
      throw error;
    }
  }

  #consume(data: Uint8Array): void {
    const length = data.length;
    const base = this.#bytesFed;
    let index = 0;
    while (index < length) {
      if (this.#phase === Phase.ChunkBody) {
        const count = Math.min(this.#chunkRemaining, length - index);
        this.#consumeBody(data, index, count);
        index += count;
        this.#chunkRemaining -= count;
        if (this.#chunkRemaining === 0) this.#phase = Phase.HeaderHigh;
      } else if (this.#phase === Phase.HeaderHigh) {
        if (index + 1 < length) {
          this.#onChunkHeader(((data[index] as number) << 8) | (data[index + 1] as number), base + index);
          index += 2;
        } else {
          this.#headerHigh = data[index] as number;
          this.#headerStart = base + index;
          this.#phase = Phase.HeaderLow;
          index += 1;
        }
      } else {
        this.#onChunkHeader((this.#headerHigh << 8) | (data[index] as number), this.#headerStart);
        index += 1;
      }
    }
    this.#bytesFed = base + length;
  }

  #onChunkHeader(chunkSize: number, headerStart: number): void {
    if (chunkSize === 0) {
      this.#phase = Phase.HeaderHigh;
      if (this.#messageStart === NO_MESSAGE) this.#noopCount++;
      else this.#endMessage(headerStart + 2);
      return;
    }
    if (this.#messageStart === NO_MESSAGE) this.#messageStart = headerStart;
    this.#chunkRemaining = chunkSize;
    this.#phase = Phase.ChunkBody;
    if (this.#keeping) this.#reserve(this.#messageSize + chunkSize);
  }

  #consumeBody(data: Uint8Array, start: number, count: number): void {
    let position = start;
    const end = start + count;
    while (this.#messageSize < 2 && position < end) {
      const byte = data[position++] as number;
      if (this.#messageSize === 0) {
        if ((byte & 0xf0) !== 0xb0) {
          throw new BoltFramingError(
            'message-not-a-struct',
            `message starts with 0x${byte.toString(16)}, not a struct marker`,
          );
        }
        this.#marker = byte;
        this.#messageSize = 1;
      } else {
        this.#signature = byte;
        this.#messageSize = 2;
        this.#startKeepingIfWanted(this.#chunkRemaining - (position - start));
      }
    }
    const rest = end - position;
    if (rest === 0) return;
    this.#messageSize += rest;
    const payload = this.#payload;
    if (this.#keeping && payload !== null) {
      const target = this.#messageSize - rest;
      if (rest <= SMALL_COPY_BYTES) {
        // Summaries are tens of bytes: a loop beats making a view to copy from.
        for (let index = 0; index < rest; index++) payload[target + index] = data[position + index] as number;
      } else {
        payload.set(data.subarray(position, end), target);
      }
    }
  }

  #startKeepingIfWanted(restOfChunk: number): void {
    if (!this.#keepPayload(this.#signature)) return;
    this.#keeping = true;
    // The rest of this chunk is known now; later chunks grow the buffer from their headers.
    this.#reserve(this.#messageSize + restOfChunk);
    if (this.#payload !== null) {
      this.#payload[0] = this.#marker;
      this.#payload[1] = this.#signature;
    }
  }

  /** Makes room for `needed` payload bytes, or gives up on the payload when that exceeds the bound. */
  #reserve(needed: number): void {
    if (needed > this.#maxPayloadBytes) {
      if (!this.#dropOversized) {
        throw new BoltFramingError(
          'message-too-large',
          `message 0x${this.#signature.toString(16)} exceeds ${this.#maxPayloadBytes} bytes`,
        );
      }
      this.#keeping = false;
      this.#dropped = true;
      this.#payload = null;
      return;
    }
    const current = this.#payload;
    if (current !== null && current.length >= needed) return;
    const capacity = Math.min(this.#maxPayloadBytes, Math.max(needed, (current?.length ?? 0) * 2));
    const grown = Buffer.allocUnsafe(capacity);
    if (current !== null) current.copy(grown, 0, 0, this.#messageSize);
    this.#payload = grown;
  }

  /** The kept bytes; the buffer itself when it was sized exactly (a single-chunk message, the usual case). */
  #keptPayload(): Buffer | null {
    const payload = this.#payload;
    if (payload === null) return null;
    return payload.length === this.#messageSize ? payload : payload.subarray(0, this.#messageSize);
  }

  #endMessage(wireEnd: number): void {
    if (this.#messageSize < 2) {
      throw new BoltFramingError(
        'message-too-short',
        `message of ${this.#messageSize} byte ended before its signature`,
      );
    }
    const frame: BoltMessageFrame = {
      signature: this.#signature,
      fieldCount: this.#marker & 0x0f,
      payload: this.#keeping ? this.#keptPayload() : null,
      payloadDropped: this.#dropped,
      size: this.#messageSize,
      wireStart: this.#messageStart,
      wireEnd,
    };
    this.#messageStart = NO_MESSAGE;
    this.#messageSize = 0;
    this.#signature = NO_SIGNATURE;
    this.#keeping = false;
    this.#dropped = false;
    this.#payload = null;
    this.#onMessage(frame);
  }
}

/** Chunks one dechunked message for the wire, end marker included. */
export function chunkMessage(payload: Uint8Array, maxChunkSize: number = MAX_CHUNK_SIZE): Buffer {
  if (!Number.isInteger(maxChunkSize) || maxChunkSize < 1 || maxChunkSize > MAX_CHUNK_SIZE) {
    throw new RangeError(`maxChunkSize must be an integer in 1..${MAX_CHUNK_SIZE}`);
  }
  const chunkCount = Math.ceil(payload.length / maxChunkSize);
  const wire = Buffer.allocUnsafe(payload.length + 2 * chunkCount + 2);
  let write = 0;
  for (let read = 0; read < payload.length; read += maxChunkSize) {
    const size = Math.min(maxChunkSize, payload.length - read);
    wire.writeUInt16BE(size, write);
    wire.set(payload.subarray(read, read + size), write + 2);
    write += 2 + size;
  }
  wire.writeUInt16BE(0, write);
  return wire;
}
