/**
 * The server's connection-id counter, read without logging in. Neo4j numbers Bolt connections from
 * one counter (`bolt-1234`), and from Bolt 5.1 HELLO carries no credentials (LOGON does) while its
 * SUCCESS already names the connection: handshake, HELLO, read `connection_id`, GOODBYE. No login
 * happens, so nothing reaches the security log and a wrong password cannot count towards a lockout.
 *
 * A tiny client of its own rather than the proxy's codec: probes do not depend on the proxy, and
 * this needs one request, one reply and just enough PackStream to walk a map.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

export interface BoltEndpoint {
  readonly host: string;
  readonly port: number;
  /** off: plain TCP; verify: +s (system CAs, or `ca`); trust-any: +ssc. */
  readonly tls: 'off' | 'verify' | 'trust-any';
  readonly ca?: Buffer;
}

const DEFAULT_BOLT_PORT = 7687;
const MAGIC = [0x60, 0x60, 0xb0, 0x17];
/** [reserved, range, minor, major]: 5.8 down to 5.1, the versions whose HELLO carries no credentials. */
const OFFER_5_8_TO_5_1 = [0x00, 0x07, 0x08, 0x05];
const HELLO = 0x01;
const GOODBYE = 0x02;
const SUCCESS = 0x70;
const FAILURE = 0x7f;
/** A HELLO reply is a few hundred bytes; anything this large is not one. */
const MAX_REPLY_BYTES = 64 * 1024;

/** Where the sidecar's `neo4j.uri` points and how to reach it, as the driver would. */
export function boltEndpoint(uri: string, tlsCaFile?: string): BoltEndpoint {
  const url = new URL(uri);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port ? Number(url.port) : DEFAULT_BOLT_PORT;
  const scheme = url.protocol.replace(/:$/, '');
  if (scheme.endsWith('+ssc')) return { host, port, tls: 'trust-any' };
  if (scheme.endsWith('+s'))
    return { host, port, tls: 'verify', ...(tlsCaFile ? { ca: readFileSync(tlsCaFile) } : {}) };
  return { host, port, tls: 'off' };
}

export class BoltHelloRefused extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'BoltHelloRefused';
  }
}

export interface ReadCounterOptions {
  /** Sent as HELLO's user_agent and bolt_agent, so the connection is recognisable as the sidecar's. */
  userAgent: string;
  timeoutMs: number;
}

/**
 * Opens one unauthenticated Bolt connection and returns its connection id number: every connection
 * the server accepted before it has a lower one. Undefined when the server speaks no Bolt 5.1+ (its
 * HELLO would need the password). Network and protocol failures reject.
 */
export function readConnectionCounter(
  endpoint: BoltEndpoint,
  options: ReadCounterOptions,
): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const socket = connect(endpoint);
    let received = Buffer.alloc(0);
    let stage: 'version' | 'hello' | 'done' = 'version';
    const finish = (error: Error | undefined, value?: number) => {
      if (stage === 'done') return;
      stage = 'done';
      clearTimeout(timer);
      if (error) {
        socket.destroy();
        reject(error);
        return;
      }
      // GOODBYE, then wait (briefly) for the server to close, so a census listing right after does
      // not see this connection still open.
      socket.end(Buffer.from([0x00, 0x02, 0xb0, GOODBYE, 0x00, 0x00]));
      const closed = setTimeout(() => socket.destroy(), Math.min(1000, options.timeoutMs));
      socket.once('close', () => {
        clearTimeout(closed);
        resolve(value);
      });
    };
    const timer = setTimeout(
      () => finish(new Error(`connection counter: no HELLO reply within ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
    socket.once(endpoint.tls === 'off' ? 'connect' : 'secureConnect', () => {
      socket.write(Buffer.from([...MAGIC, ...OFFER_5_8_TO_5_1, ...new Array(12).fill(0)]));
    });
    socket.on('error', (error) => finish(error));
    socket.on('close', () => finish(new Error('connection counter: the server closed the connection')));
    socket.on('data', (data: Buffer) => {
      received = Buffer.concat([received, data]);
      try {
        if (stage === 'version' && received.length >= 4) {
          const agreed = received.readUInt32BE(0);
          received = received.subarray(4);
          if (agreed === 0) {
            stage = 'done';
            clearTimeout(timer);
            socket.destroy();
            resolve(undefined);
            return;
          }
          stage = 'hello';
          socket.write(chunk(helloMessage(options.userAgent)));
        }
        if (stage === 'hello') {
          if (received.length > MAX_REPLY_BYTES) throw new Error('connection counter: HELLO reply too large');
          const message = dechunk(received);
          if (message) finish(undefined, connectionIdFromReply(message));
        }
      } catch (error) {
        finish(error as Error);
      }
    });
  });
}

function connect(endpoint: BoltEndpoint): net.Socket {
  if (endpoint.tls === 'off') return net.connect({ host: endpoint.host, port: endpoint.port });
  return tls.connect({
    host: endpoint.host,
    port: endpoint.port,
    // SNI takes host names only.
    ...(net.isIP(endpoint.host) ? {} : { servername: endpoint.host }),
    ...(endpoint.ca ? { ca: endpoint.ca } : {}),
    rejectUnauthorized: endpoint.tls === 'verify',
  });
}

function connectionIdFromReply(message: Buffer): number {
  const reader = new Reader(message);
  const { tag, fields } = reader.struct();
  const metadata = fields[0] instanceof Map ? fields[0] : new Map<string, unknown>();
  if (tag === FAILURE) {
    throw new BoltHelloRefused(String(metadata.get('code') ?? ''), String(metadata.get('message') ?? 'HELLO failed'));
  }
  if (tag !== SUCCESS) throw new Error(`connection counter: unexpected reply 0x${tag.toString(16)} to HELLO`);
  const id = metadata.get('connection_id');
  const match = typeof id === 'string' ? /-(\d+)$/.exec(id) : null;
  if (!match) throw new Error('connection counter: HELLO SUCCESS carries no connection_id');
  return Number(match[1]);
}

// --- Just enough PackStream and chunking for HELLO and its reply.

function helloMessage(userAgent: string): Buffer {
  const agent = packMap([['product', packString(userAgent)]]);
  const extra = packMap([
    ['user_agent', packString(userAgent)],
    ['bolt_agent', agent],
  ]);
  return Buffer.concat([Buffer.from([0xb1, HELLO]), extra]);
}

function packString(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length < 16) return Buffer.concat([Buffer.from([0x80 | bytes.length]), bytes]);
  if (bytes.length < 256) return Buffer.concat([Buffer.from([0xd0, bytes.length]), bytes]);
  const header = Buffer.alloc(3);
  header[0] = 0xd1;
  header.writeUInt16BE(bytes.length, 1);
  return Buffer.concat([header, bytes]);
}

function packMap(entries: Array<[string, Buffer]>): Buffer {
  return Buffer.concat([
    Buffer.from([0xa0 | entries.length]),
    ...entries.flatMap(([key, value]) => [packString(key), value]),
  ]);
}

function chunk(message: Buffer): Buffer {
  const header = Buffer.alloc(2);
  header.writeUInt16BE(message.length, 0);
  return Buffer.concat([header, message, Buffer.from([0x00, 0x00])]);
}

/** The first complete message in `data`, or undefined while it is still arriving. */
function dechunk(data: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let position = 0;
  while (position + 2 <= data.length) {
    const size = data.readUInt16BE(position);
    position += 2;
    if (size === 0) {
      if (parts.length > 0) return Buffer.concat(parts);
      continue; // a NOOP chunk
    }
    if (position + size > data.length) return undefined;
    parts.push(data.subarray(position, position + size));
    position += size;
  }
  return undefined;
}

class Reader {
  private position = 0;
  constructor(private readonly data: Buffer) {}

  struct(): { tag: number; fields: unknown[] } {
    const marker = this.byte();
    if ((marker & 0xf0) !== 0xb0) throw new Error('connection counter: reply is not a Bolt message');
    const tag = this.byte();
    return { tag, fields: Array.from({ length: marker & 0x0f }, () => this.value()) };
  }

  value(): unknown {
    const marker = this.byte();
    if (marker < 0x80) return marker;
    if (marker >= 0xf0) return marker - 0x100;
    const high = marker & 0xf0;
    if (high === 0x80) return this.text(marker & 0x0f);
    if (high === 0x90) return this.list(marker & 0x0f);
    if (high === 0xa0) return this.map(marker & 0x0f);
    if (high === 0xb0) {
      this.byte();
      return this.list(marker & 0x0f);
    }
    switch (marker) {
      case 0xc0:
        return null;
      case 0xc1:
        return this.take(8).readDoubleBE(0);
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc8:
        return this.take(1).readInt8(0);
      case 0xc9:
        return this.take(2).readInt16BE(0);
      case 0xca:
        return this.take(4).readInt32BE(0);
      case 0xcb:
        return Number(this.take(8).readBigInt64BE(0));
      case 0xcc:
        return this.take(this.size(1));
      case 0xcd:
        return this.take(this.size(2));
      case 0xce:
        return this.take(this.size(4));
      case 0xd0:
      case 0xd1:
      case 0xd2:
        return this.text(this.size(1 << (marker - 0xd0)));
      case 0xd4:
      case 0xd5:
      case 0xd6:
        return this.list(this.size(1 << (marker - 0xd4)));
      case 0xd8:
      case 0xd9:
      case 0xda:
        return this.map(this.size(1 << (marker - 0xd8)));
      default:
        throw new Error(`connection counter: unknown PackStream marker 0x${marker.toString(16)}`);
    }
  }

  private list(length: number): unknown[] {
    return Array.from({ length }, () => this.value());
  }

  private map(length: number): Map<string, unknown> {
    const entries = new Map<string, unknown>();
    for (let i = 0; i < length; i++) entries.set(String(this.value()), this.value());
    return entries;
  }

  private text(length: number): string {
    return this.take(length).toString('utf8');
  }

  private size(bytes: number): number {
    const raw = this.take(bytes);
    return bytes === 1 ? raw.readUInt8(0) : bytes === 2 ? raw.readUInt16BE(0) : raw.readUInt32BE(0);
  }

  private byte(): number {
    return this.take(1)[0]!;
  }

  private take(count: number): Buffer {
    if (this.position + count > this.data.length) throw new Error('connection counter: truncated reply');
    const slice = this.data.subarray(this.position, this.position + count);
    this.position += count;
    return slice;
  }
}
