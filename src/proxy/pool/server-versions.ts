/**
 * What the server speaks, learnt with one handshake of the proxy's own (the manifest v1 answer lists
 * every version range), so the proxy can answer clients' handshakes itself; and the answer a server
 * with those ranges would give a client's offers.
 */
import type net from 'node:net';
import {
  BOLT_MAGIC,
  BoltHandshake,
  type BoltVersion,
  type BoltVersionOffer,
  type BoltVersionRange,
  encodeManifestAnswer,
} from '../bolt/index.ts';
import { connectUpstream, type UpstreamTarget } from '../upstream.ts';

export interface ServerVersions {
  readonly ranges: readonly BoltVersionRange[];
  readonly capabilities: bigint;
}

/** Magic, then the manifest v1 offer alone. */
export const MANIFEST_ONLY_OFFER = Buffer.concat([BOLT_MAGIC, Buffer.from([0, 0, 1, 0xff]), Buffer.alloc(12)]);

/**
 * Connects, offers the manifest and reads the ranges; null when the server does not speak the manifest
 * (older than Bolt 5.7), in which case the proxy cannot answer handshakes for it and passes through.
 */
export function learnServerVersions(target: UpstreamTarget, timeoutMs: number): Promise<ServerVersions | null> {
  return new Promise((resolve, reject) => {
    const handshake = new BoltHandshake();
    handshake.feedClient(MANIFEST_ONLY_OFFER);
    let socket: net.Socket | null = null;
    const timer = setTimeout(() => {
      socket?.destroy();
      reject(new Error(`no handshake answer from Neo4j within ${timeoutMs} ms`));
    }, timeoutMs);
    socket = connectUpstream(target, () => socket?.write(MANIFEST_ONLY_OFFER));
    socket.on('data', (data: Buffer) => {
      try {
        const progress = handshake.feedServer(data);
        if (progress.state === 'incomplete') return;
        clearTimeout(timer);
        socket?.destroy();
        const ranges = handshake.serverVersionRanges;
        resolve(
          progress.state === 'complete' && handshake.usedManifest && ranges !== null
            ? { ranges, capabilities: handshake.serverCapabilities ?? 0n }
            : null,
        );
      } catch (error) {
        clearTimeout(timer);
        socket?.destroy();
        reject(error);
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      reject(new Error('Neo4j closed the connection during the handshake'));
    });
  });
}

export type HandshakeAnswer =
  | { readonly kind: 'manifest'; readonly bytes: Buffer }
  | { readonly kind: 'version'; readonly version: BoltVersion; readonly bytes: Buffer }
  | { readonly kind: 'none'; readonly bytes: Buffer };

/**
 * The first of the client's offers the server can take, in the client's order, as Neo4j picks: a
 * manifest offer gets the manifest (ranges and capabilities); a range gets its highest shared version.
 */
export function answerOffers(offers: readonly BoltVersionOffer[], server: ServerVersions): HandshakeAnswer {
  for (const offer of offers) {
    if (offer.kind === 'manifest' && offer.manifestVersion === 1) {
      return { kind: 'manifest', bytes: encodeManifestAnswer(server.ranges, server.capabilities) };
    }
    if (offer.kind !== 'versions') continue;
    const { major, minMinor, maxMinor } = offer.range;
    let best = -1;
    for (const range of server.ranges) {
      if (range.major !== major) continue;
      const top = Math.min(maxMinor, range.maxMinor);
      if (top >= Math.max(minMinor, range.minMinor) && top > best) best = top;
    }
    if (best >= 0) {
      return { kind: 'version', version: { major, minor: best }, bytes: Buffer.from([0, 0, best, major]) };
    }
  }
  return { kind: 'none', bytes: Buffer.alloc(4) };
}

/** The version a manifest client then chose, if the server announced it. */
export function serverSpeaks(server: ServerVersions, version: BoltVersion): boolean {
  return server.ranges.some(
    (range) => range.major === version.major && version.minor >= range.minMinor && version.minor <= range.maxMinor,
  );
}
