/**
 * The server-to-client byte stream of one connection, forwarded unchanged except for whole messages
 * replaced by rewritten routing tables. Offsets are positions in the message stream (the bytes fed to
 * the server-side BoltDechunker), so a frame's [wireStart, wireEnd) names exactly what to replace.
 */

/**
 * A replacement for a message part of which had already gone out: the connection failed to hold it
 * back, and the client is being handed Neo4j's own addresses. A bug, so the connection is closed
 * (internal_error) and the driver fetches a fresh, rewritten table through a new one.
 */
export class LateReplacementError extends Error {
  override readonly name = 'LateReplacementError';
}
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
  /** Stream offset up to which bytes have been handed out: nothing before it can be replaced any more. */
  #sent = 0;

  get heldBytes(): number {
    return this.#held?.length ?? 0;
  }

  /** Sends `bytes` instead of the stream's [start, end), once take() reaches end. */
  replace(start: number, end: number, bytes: Buffer): void {
    if (start < this.#sent) {
      throw new LateReplacementError(
        `routing table at stream bytes [${start}, ${end}) must be replaced, but bytes up to ${this.#sent} have gone out`,
      );
    }
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
      this.#sent = Math.max(this.#sent, safeEnd);
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
    this.#sent = Math.max(this.#sent, cursor, safeEnd);
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
