/**
 * The server-to-client byte stream of one connection, forwarded unchanged except for whole messages
 * replaced by rewritten routing tables. Offsets are positions in the message stream (the bytes fed to
 * the server-side BoltDechunker), so a frame's [wireStart, wireEnd) names exactly what to replace.
 */
interface Replacement {
  readonly start: number;
  readonly end: number;
  readonly bytes: Buffer;
}

export class ServerStreamForwarder {
  /** Bytes received but not forwarded yet: the start of a message that may still be replaced. */
  #held: Buffer | null = null;
  /** Stream offset of #held's first byte. */
  #heldStart = 0;
  #replacements: Replacement[] = [];
  /** Replacements that could not be applied because part of the message had already gone out. */
  #skippedReplacements = 0;

  get heldBytes(): number {
    return this.#held?.length ?? 0;
  }

  get skippedReplacements(): number {
    return this.#skippedReplacements;
  }

  /** Sends `bytes` instead of the stream's [start, end), once take() reaches end. */
  replace(start: number, end: number, bytes: Buffer): void {
    this.#replacements.push({ start, end, bytes });
  }

  /**
   * `data` was received at stream offset `offset`; everything before `safeEnd` may go out now, the rest
   * is held. Returns the pieces to write, in order. Without replacements or held bytes (nearly every
   * read) the read itself, or a slice of it, is returned: no copy.
   */
  take(data: Buffer, offset: number, safeEnd: number): Buffer[] {
    if (this.#held === null && this.#replacements.length === 0) {
      const cut = safeEnd - offset;
      if (cut < data.length) {
        this.#held = data.subarray(cut);
        this.#heldStart = safeEnd;
      }
      if (cut <= 0) return [];
      return [cut >= data.length ? data : data.subarray(0, cut)];
    }
    const start = this.#held === null ? offset : this.#heldStart;
    const all = this.#held === null ? data : Buffer.concat([this.#held, data]);
    const pieces: Buffer[] = [];
    let cursor = start;
    const pending: Replacement[] = [];
    for (const replacement of this.#replacements) {
      if (replacement.end > safeEnd) {
        pending.push(replacement);
      } else if (replacement.start < cursor) {
        this.#skippedReplacements++;
      } else {
        if (replacement.start > cursor) pieces.push(all.subarray(cursor - start, replacement.start - start));
        pieces.push(replacement.bytes);
        cursor = replacement.end;
      }
    }
    this.#replacements = pending;
    if (safeEnd > cursor) pieces.push(all.subarray(cursor - start, safeEnd - start));
    const heldFrom = Math.max(cursor, safeEnd);
    this.#held = heldFrom - start < all.length ? all.subarray(heldFrom - start) : null;
    this.#heldStart = heldFrom;
    return pieces;
  }

  /** The stream ended: whatever is still held goes out as received (a truncated message stays truncated). */
  flush(): Buffer[] {
    const held = this.#held;
    this.#held = null;
    this.#replacements = [];
    return held === null ? [] : [held];
  }
}
