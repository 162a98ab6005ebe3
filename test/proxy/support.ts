/**
 * Shared pieces of the proxy tests: a proxy with its own recorder, a raw Bolt client for speaking
 * exact bytes, and metric deltas read the way Prometheus sees them.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../src/logger.ts';
import { PrometheusSink, Recorder } from '../../src/metrics/index.ts';
import {
  BOLT_MAGIC,
  BoltDechunker,
  chunkMessage,
  decodeBoltMessage,
  encodePackStream,
  type PackStreamMap,
  PackStreamStruct,
  type PackStreamValue,
} from '../../src/proxy/bolt/index.ts';
import { type BoltProxy, type BoltProxyOptions, startBoltProxy, upstreamFromUri } from '../../src/proxy/index.ts';
import { metricValue } from '../support/metrics.ts';

export interface TestProxy {
  readonly proxy: BoltProxy;
  readonly recorder: Recorder;
  readonly sink: PrometheusSink;
  /** JSON log lines the proxy wrote. */
  readonly logs: string[];
  /** bolt://<proxy> */
  readonly boltUri: string;
  /** neo4j://<proxy> */
  readonly routingUri: string;
  /** Sum of a metric's samples with these labels, after the proxy's sampler ran. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  stop(): Promise<void>;
}

export async function startTestProxy(
  upstreamUri: string,
  options: Partial<Omit<BoltProxyOptions, 'recorder' | 'upstream'>> & { tlsCaFile?: string } = {},
): Promise<TestProxy> {
  const sink = new PrometheusSink();
  const recorder = new Recorder({ sinks: [sink] });
  const logs: string[] = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => logs.push(...chunk.toString().split('\n').filter(Boolean)));
  const { tlsCaFile, ...proxyOptions } = options;
  const proxy = await startBoltProxy({
    upstream: upstreamFromUri(upstreamUri, { tlsCaFile }),
    recorder,
    logger: createLogger({ level: 'debug', pretty: 'never', destination: stream }),
    port: 0,
    ...proxyOptions,
  });
  return {
    proxy,
    recorder,
    sink,
    logs,
    boltUri: `bolt://${proxy.address}`,
    routingUri: `neo4j://${proxy.address}`,
    async metric(name, labels = {}) {
      recorder.sample(true);
      return metricValue(sink.registry, name, labels);
    },
    stop: () => proxy.stop(1000),
  };
}

/** Polls until the check passes (connection teardown is asynchronous). */
export async function eventually(check: () => Promise<void> | void, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

export function map(entries: Record<string, PackStreamValue>): PackStreamMap {
  return new Map(Object.entries(entries));
}

/** A chunked Bolt message. */
export function message(signature: number, ...fields: PackStreamValue[]): Buffer {
  return chunkMessage(encodePackStream(new PackStreamStruct(signature, fields)));
}

/** Magic plus four proposals, each as [reserved, range, minor, major]. */
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

export function hostPort(uri: string): string {
  return new URL(uri).host;
}
