/**
 * The narrow way a client connection reaches Neo4j, whichever upstream it has: `UpstreamLink`, and the
 * link for an upstream opened for this one client (pooling off, or a Neo4j the pool cannot answer for),
 * whose socket this file owns. The link for an upstream lent by the pool is pool/lent-link.ts.
 */
import type net from 'node:net';
import type { CloseReason } from './metrics.ts';
import { connectUpstream, type UpstreamTarget } from './upstream.ts';

/** What the connection knows as it lets its upstream go; for a lent one, whether the pool may reuse it. */
export interface LinkRelease {
  /** A message is half-sent or half-read on it, or part of the client's GOODBYE reached it. */
  readonly midMessage: boolean;
  /** Why the client connection is closing, if it is. */
  readonly closeReason: CloseReason | null;
  /** Replies the client still had coming, for RESET to read past. */
  readonly pendingSummaries: number;
  /** Transaction mode: the unit of work ended without a FAILURE, so the upstream is READY without RESET. */
  readonly ready: boolean;
}

/** What the connection hears from its upstream. */
export interface UpstreamEvents {
  readonly onData: (data: Buffer) => void;
  /** Neo4j closed (`error`: the socket failed) and nothing more will come. */
  readonly onClosed: (error: Error | null) => void;
}

export interface UpstreamLink {
  /** Lent by the pool: it serves other clients after this one, so it must never see this client's GOODBYE. */
  readonly outlivesClient: boolean;
  /** Written and not yet sent to Neo4j. */
  readonly bufferedBytes: number;
  /** False: Neo4j is not taking bytes as fast as they come; wait for onceDrained. */
  write(data: Buffer): boolean;
  onceDrained(listener: () => void): void;
  pause(): void;
  resume(): void;
  /**
   * The client is done with it: an own socket is half-closed and its close is still to come (false); a
   * lent upstream goes back to the pool, reset or closed as `release` allows, and nothing more comes
   * from it (true).
   */
  release(release: LinkRelease): boolean;
  /** Cut off: an own socket is destroyed; a lent upstream goes back on the client's close instead. */
  destroy(): void;
}

export interface OwnUpstreamEvents extends UpstreamEvents {
  /** TCP (and TLS) is up after `seconds`. */
  readonly onConnected: (seconds: number) => void;
  /** Neo4j half-closed. */
  readonly onEnd: () => void;
  /** The socket failed; onClosed(null) follows. */
  readonly onError: (error: Error) => void;
}

/** A connection to Neo4j opened for one client and closed with it. */
export class OwnUpstreamLink implements UpstreamLink {
  readonly outlivesClient = false;
  readonly #socket: net.Socket;

  /** The socket is returned at once: Node queues the first bytes until the connection (and TLS) is up. */
  constructor(target: UpstreamTarget, connectTimeoutMs: number, events: OwnUpstreamEvents) {
    const startedMs = performance.now();
    let connected = false;
    const socket = connectUpstream(target, () => {
      connected = true;
      socket.setTimeout(0);
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 60_000);
      events.onConnected((performance.now() - startedMs) / 1000);
    });
    socket.setTimeout(connectTimeoutMs, () => {
      if (!connected) socket.destroy(new Error(`no connection within ${connectTimeoutMs} ms`));
    });
    socket.on('data', events.onData);
    socket.on('end', events.onEnd);
    socket.on('error', events.onError);
    socket.on('close', () => events.onClosed(null));
    this.#socket = socket;
  }

  get bufferedBytes(): number {
    return this.#socket.writableLength;
  }

  write(data: Buffer): boolean {
    const socket = this.#socket;
    if (socket.destroyed || socket.writableEnded) return true;
    return socket.write(data);
  }

  onceDrained(listener: () => void): void {
    this.#socket.once('drain', listener);
  }

  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  release(): boolean {
    this.#socket.end();
    return false;
  }

  destroy(): void {
    this.#socket.destroy();
  }
}
