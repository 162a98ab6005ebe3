/**
 * Raw Bolt for tests that must control the exact bytes on the wire: handshake offers, chunked
 * PackStream messages built with the project's encoder, and a client that reads raw bytes during the
 * handshake and decoded messages after it. Tests of the codec itself (test/proxy/bolt) keep
 * hand-written bytes and do not use this.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  BOLT_MAGIC,
  BoltDechunker,
  BoltSignature,
  chunkMessage,
  decodeBoltMessage,
  encodePackStream,
  type PackStreamMap,
  PackStreamStruct,
  type PackStreamValue,
} from '../../src/proxy/bolt/index.ts';

export function map(entries: Record<string, PackStreamValue>): PackStreamMap {
  return new Map(Object.entries(entries));
}

/** A ROUTE reply's routing table: every address routes, all but the first read, the first one writes. */
export function routingTable(addresses: readonly string[]): PackStreamMap {
  return map({
    ttl: 300,
    db: 'neo4j',
    servers: [
      map({ addresses: [...addresses], role: 'ROUTE' }),
      map({ addresses: addresses.slice(1), role: 'READ' }),
      map({ addresses: addresses.slice(0, 1), role: 'WRITE' }),
    ],
  });
}

/** A chunked Bolt message. */
export function message(signature: number, ...fields: PackStreamValue[]): Buffer {
  return chunkMessage(encodePackStream(new PackStreamStruct(signature, fields)));
}

/** Magic plus up to four proposals, each [range, minor, major], sent as [reserved, range, minor, major]. */
export function handshakeOffers(...offers: [number, number, number][]): Buffer {
  const slots = Buffer.alloc(16);
  offers.forEach(([range, minor, major], index) => {
    slots.set([0, range, minor, major], index * 4);
  });
  return Buffer.concat([BOLT_MAGIC, slots]);
}

export const MANIFEST_V1_OFFER: [number, number, number] = [0, 1, 0xff];

export interface ReceivedMessage {
  readonly signature: number;
  readonly fields: PackStreamValue[];
}

/**
 * A Bolt client that writes exact bytes and reads replies: raw bytes before the handshake is over,
 * decoded messages after.
 */
export class RawBoltClient {
  readonly socket: net.Socket;
  readonly closed: Promise<void>;
  #buffer = Buffer.alloc(0);
  #messages: ReceivedMessage[] = [];
  #dechunker: BoltDechunker | null = null;
  #waiters: (() => void)[] = [];
  #ended = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (data: Buffer) => {
      if (this.#dechunker) this.#dechunker.feed(data);
      else this.#buffer = Buffer.concat([this.#buffer, data]);
      this.#wake();
    });
    socket.on('end', () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on('error', () => {
      this.#ended = true;
      this.#wake();
    });
  }

  static connect(address: string): Promise<RawBoltClient> {
    const [host, port] = splitAddress(address);
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port }, () => resolve(new RawBoltClient(socket)));
      socket.once('error', reject);
    });
  }

  get ended(): boolean {
    return this.#ended;
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Writes one byte at a time, each in its own TCP segment as far as Node allows. */
  async writeByteByByte(bytes: Buffer): Promise<void> {
    for (const byte of bytes) {
      await new Promise<void>((resolve) => this.socket.write(Buffer.from([byte]), () => resolve()));
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** The next `count` raw bytes (handshake answers). */
  async readBytes(count: number, timeoutMs = 5000): Promise<Buffer> {
    await this.#waitFor(() => this.#buffer.length >= count, timeoutMs, `${count} handshake bytes`);
    const bytes = this.#buffer.subarray(0, count);
    this.#buffer = this.#buffer.subarray(count);
    return bytes;
  }

  /** From now on, replies are dechunked into messages. */
  startMessages(): void {
    const leftover = this.#buffer;
    this.#buffer = Buffer.alloc(0);
    this.#dechunker = new BoltDechunker({
      keepPayload: () => true,
      maxPayloadBytes: 256 * 1024 * 1024,
      onMessage: (frame) => {
        const decoded = decodeBoltMessage(frame.payload ?? Buffer.alloc(0));
        this.#messages.push({ signature: decoded.signature, fields: decoded.fields });
      },
    });
    if (leftover.length > 0) this.#dechunker.feed(leftover);
  }

  async readMessage(timeoutMs = 10_000): Promise<ReceivedMessage> {
    await this.#waitFor(() => this.#messages.length > 0, timeoutMs, 'a Bolt message');
    return this.#messages.shift() as ReceivedMessage;
  }

  /** Resolves when the peer has closed (or fails after timeoutMs). */
  async waitForClose(timeoutMs = 5000): Promise<void> {
    await this.#waitFor(() => this.#ended, timeoutMs, 'the connection to close');
    await this.closed;
  }

  close(): void {
    this.socket.destroy();
  }

  async #waitFor(ready: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ready()) {
      if (this.#ended && !ready()) assert.fail(`connection ended while waiting for ${what}`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) assert.fail(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

export function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(':');
  return [address.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), Number(address.slice(colon + 1))];
}

/** Bolt 5.8 as the last of four offers after the manifest v1 marker. */
export const BOLT_5_8_OFFER: [number, number, number] = [8, 8, 5];

/** The client's answer to the manifest: version 5.8, then a capability varint of zero. */
export const CHOOSE_BOLT_5_8 = Buffer.from([0, 0, 8, 5, 0]);

/**
 * Connects and agrees on Bolt 5.8 through the manifest v1 handshake: offers the manifest, reads the
 * server's (marker, version ranges, capability varint), then sends its choice with `first` in the
 * same write. With `byteByByte`, both of the client's handshake steps go out a byte at a time.
 */
export async function connectBolt58(
  address: string,
  first: Buffer[] = [],
  options: { byteByByte?: boolean } = {},
): Promise<RawBoltClient> {
  const client = await RawBoltClient.connect(address);
  const send = (bytes: Buffer) => (options.byteByByte ? client.writeByteByByte(bytes) : client.write(bytes));
  await send(handshakeOffers(MANIFEST_V1_OFFER, BOLT_5_8_OFFER));
  assert.deepEqual([...(await client.readBytes(4))], [0, 0, 1, 0xff]);
  const rangeCount = (await client.readBytes(1))[0] ?? 0;
  await client.readBytes(4 * rangeCount);
  while (((await client.readBytes(1))[0] ?? 0) & 0x80) {
    // capability varint continues
  }
  client.startMessages();
  await send(Buffer.concat([CHOOSE_BOLT_5_8, ...first]));
  return client;
}

/** HELLO as a 5.1+ client sends it: agent only, credentials come with LOGON. */
export function hello(userAgent: string): Buffer {
  return message(BoltSignature.HELLO, map({ user_agent: userAgent, bolt_agent: map({ product: userAgent }) }));
}

export function logon(username: string, password: string): Buffer {
  return message(BoltSignature.LOGON, map({ scheme: 'basic', principal: username, credentials: password }));
}

/** RUN in auto-commit with no extra metadata, then PULL of every record. */
export function runAndPull(query: string, parameters: Record<string, PackStreamValue> = {}): Buffer {
  return Buffer.concat([
    message(BoltSignature.RUN, query, map(parameters), map({})),
    message(BoltSignature.PULL, map({ n: -1 })),
  ]);
}

/** A received message as readable text, maps included. */
export function describeMessage(received: ReceivedMessage): string {
  return JSON.stringify(received, (_key, value: unknown) => (value instanceof Map ? Object.fromEntries(value) : value));
}

/** Bolt 5.8 with HELLO and LOGON in the same write as the version choice; both must succeed. */
export async function loggedInBolt58(
  address: string,
  login: { userAgent: string; username: string; password: string },
): Promise<RawBoltClient> {
  const client = await connectBolt58(address, [hello(login.userAgent), logon(login.username, login.password)]);
  for (const step of ['HELLO', 'LOGON']) {
    const reply = await client.readMessage();
    assert.equal(reply.signature, BoltSignature.SUCCESS, `${step}: ${describeMessage(reply)}`);
  }
  return client;
}

/** Reads the replies to RUN + PULL of a query that returns one row of one column: SUCCESS, that row, SUCCESS. */
export async function expectOneValue(client: RawBoltClient, value: PackStreamValue): Promise<void> {
  assert.equal((await client.readMessage()).signature, BoltSignature.SUCCESS);
  assert.deepEqual((await client.readMessage()).fields, [[value]]);
  assert.equal((await client.readMessage()).signature, BoltSignature.SUCCESS);
}
