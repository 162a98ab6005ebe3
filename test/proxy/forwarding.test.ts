/**
 * What the proxy forwards, byte for byte, with a scripted upstream in place of Neo4j: odd chunking and
 * NOOPs pass unchanged both ways, only a routing table is replaced (even when it trickles in a byte per
 * read), and upstream misbehaviour (HTTP, no common version, undecodable metadata) closes that one
 * connection with its own reason.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  BoltSignature,
  chunkMessage,
  encodePackStream,
  PackStreamStruct,
  type PackStreamValue,
} from '../../src/proxy/bolt/index.ts';
import { handshakeOffers, MANIFEST_V1_OFFER, map, message, routingTable } from '../support/raw-bolt.ts';
import { eventually, startTestProxy, type TestProxy } from './support.ts';

/** One scripted Neo4j stand-in: each connection is handed to `script` with everything it receives. */
class FakeUpstream {
  readonly #server = net.createServer((socket) => this.#onConnection(socket));
  script: (connection: FakeConnection) => Promise<void> = async () => {};
  readonly connections: FakeConnection[] = [];

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `bolt://127.0.0.1:${(this.#server.address() as net.AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const connection of this.connections) connection.socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #onConnection(socket: net.Socket): void {
    const connection = new FakeConnection(socket);
    this.connections.push(connection);
    this.script(connection).catch(() => socket.destroy());
  }
}

class FakeConnection {
  received = Buffer.alloc(0);
  #waiters: (() => void)[] = [];

  constructor(readonly socket: net.Socket) {
    socket.on('data', (data: Buffer) => {
      this.received = Buffer.concat([this.received, data]);
      for (const wake of this.#waiters.splice(0)) wake();
    });
    socket.on('error', () => {});
  }

  async receivedAtLeast(count: number): Promise<Buffer> {
    const deadline = Date.now() + 5000;
    while (this.received.length < count) {
      if (Date.now() > deadline) throw new Error(`fake upstream got ${this.received.length} of ${count} bytes`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.received;
  }

  /** Writes each piece in its own read on the other side, as far as timers can make it so. */
  async trickle(bytes: Buffer, pieceSize: number): Promise<void> {
    for (let offset = 0; offset < bytes.length; offset += pieceSize) {
      this.socket.write(bytes.subarray(offset, offset + pieceSize));
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }
}

/** A plain socket that keeps every byte it receives. */
async function rawClient(
  address: string,
): Promise<{ socket: net.Socket; received: () => Buffer; closed: Promise<void> }> {
  const [host, port] = [
    address.slice(0, address.lastIndexOf(':')),
    Number(address.slice(address.lastIndexOf(':') + 1)),
  ];
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const connected = net.connect({ host, port }, () => resolve(connected));
    connected.once('error', reject);
  });
  const pieces: Buffer[] = [];
  socket.on('data', (data: Buffer) => pieces.push(data));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, received: () => Buffer.concat(pieces), closed };
}

function payload(signature: number, ...fields: PackStreamValue[]): Buffer {
  return encodePackStream(new PackStreamStruct(signature, fields));
}

const NOOP = Buffer.from([0, 0]);
const HELLO_SUCCESS = payload(BoltSignature.SUCCESS, map({ server: 'Neo4j/5.26.0', connection_id: 'bolt-1' }));

let upstream: FakeUpstream;
let proxy: TestProxy;

before(async () => {
  upstream = new FakeUpstream();
  proxy = await startTestProxy(await upstream.start(), { advertisedAddress: 'workers-proxy:7687' });
});
after(async () => {
  await proxy.stop();
  await upstream.stop();
});

describe('forwarding', () => {
  it('passes both byte streams through unchanged: no re-chunking, NOOPs kept', async () => {
    const offers = handshakeOffers([8, 8, 5]);
    const clientStream = Buffer.concat([
      chunkMessage(payload(BoltSignature.HELLO, map({ user_agent: 'neo4j-python/5.28.1 Python/3.12' })), 2),
      NOOP,
      chunkMessage(payload(BoltSignature.RUN, 'RETURN 1', map({}), map({}))),
      chunkMessage(payload(BoltSignature.PULL, map({ n: -1 })), 3),
    ]);
    const serverStream = Buffer.concat([
      NOOP,
      chunkMessage(HELLO_SUCCESS, 1),
      NOOP,
      NOOP,
      chunkMessage(payload(BoltSignature.SUCCESS, map({ fields: ['1'], t_first: 1 })), 5),
      chunkMessage(payload(BoltSignature.RECORD, [1, 'two', [3]]), 3),
      chunkMessage(payload(BoltSignature.SUCCESS, map({ has_more: false, db: 'neo4j' }))),
    ]);
    upstream.script = async (connection) => {
      await connection.receivedAtLeast(20);
      connection.socket.write(Buffer.from([0, 0, 8, 5]));
      await connection.receivedAtLeast(20 + clientStream.length);
      await connection.trickle(serverStream, 7);
    };
    const queriesBefore = await proxy.metric('neo4j_query_duration_seconds_count', { source: 'proxy' });
    const client = await rawClient(proxy.proxy.address);
    client.socket.write(offers);
    await eventually(() => assert.equal(client.received().length, 4));
    client.socket.write(clientStream.subarray(0, 5));
    client.socket.write(clientStream.subarray(5));
    await eventually(() => assert.equal(client.received().length, 4 + serverStream.length));
    assert.deepEqual(client.received(), Buffer.concat([Buffer.from([0, 0, 8, 5]), serverStream]));
    const fake = upstream.connections.at(-1);
    assert.deepEqual(fake?.received, Buffer.concat([offers, clientStream]));
    assert.equal(
      await proxy.metric('neo4j_query_duration_seconds_count', { source: 'proxy', outcome: 'success' }),
      queriesBefore + 1,
    );
    assert.equal(
      await proxy.metric('neo4j_proxy_messages_total', { direction: 'server_to_client', message: 'RECORD' }),
      1,
    );
    assert.equal(
      await proxy.metric('neo4j_proxy_client_connections_opened_total', { user_agent: 'neo4j-python/5' }),
      1,
    );
    client.socket.end();
    await client.closed;
  });

  it('replaces only the routing table, even one that arrives a byte per read over several chunks', async () => {
    const table = routingTable(['core1:7687', 'core2:7687', 'core3:7687']);
    const before = chunkMessage(HELLO_SUCCESS, 4);
    const route = chunkMessage(payload(BoltSignature.SUCCESS, map({ rt: table })), 9);
    const afterRoute = chunkMessage(payload(BoltSignature.SUCCESS, map({})));
    upstream.script = async (connection) => {
      await connection.receivedAtLeast(20);
      connection.socket.write(Buffer.from([0, 0, 4, 4]));
      await connection.receivedAtLeast(21);
      await connection.trickle(Buffer.concat([before, route, NOOP, afterRoute]), 1);
    };
    const client = await rawClient(proxy.proxy.address);
    client.socket.write(handshakeOffers([0, 4, 4]));
    await eventually(() => assert.equal(client.received().length, 4));
    client.socket.write(
      Buffer.concat([
        message(BoltSignature.HELLO, map({ user_agent: 'neo4j-java/5.28.5' })),
        message(BoltSignature.ROUTE, map({}), [], map({ db: 'neo4j' })),
        message(BoltSignature.RESET),
      ]),
    );
    const rewritten = chunkMessage(
      payload(
        BoltSignature.SUCCESS,
        map({
          rt: map({
            ttl: 300,
            db: 'neo4j',
            servers: [
              map({ addresses: ['workers-proxy:7687'], role: 'ROUTE' }),
              map({ addresses: ['workers-proxy:7687'], role: 'READ' }),
              map({ addresses: ['workers-proxy:7687'], role: 'WRITE' }),
            ],
          }),
        }),
      ),
    );
    const expected = Buffer.concat([Buffer.from([0, 0, 4, 4]), before, rewritten, NOOP, afterRoute]);
    // Hundreds of bytes, one per timer tick: seconds on a loaded machine, where a tick can take 10-20 ms.
    await eventually(() => assert.deepEqual(client.received(), expected), 60_000);
    assert.equal(await proxy.metric('neo4j_proxy_routing_tables_rewritten_total', { via: 'ROUTE' }), 1);
    client.socket.destroy();
  });
});

describe('connections that never speak', () => {
  it('a port probe that connects and leaves opens no upstream connection', async () => {
    const upstreamConnections = upstream.connections.length;
    const closedBefore = await proxy.metric('neo4j_proxy_client_connections_closed_total', {
      user_agent: 'unknown',
      reason: 'client_closed',
    });
    const probe = await rawClient(proxy.proxy.address);
    probe.socket.end();
    await probe.closed;
    await eventually(async () => {
      assert.equal(
        await proxy.metric('neo4j_proxy_client_connections_closed_total', {
          user_agent: 'unknown',
          reason: 'client_closed',
        }),
        closedBefore + 1,
      );
    });
    assert.equal(upstream.connections.length, upstreamConnections);
  });
});

describe('upstream misbehaviour', () => {
  it('an upstream that answers HTTP is an HTTP port, not Bolt', async () => {
    upstream.script = async (connection) => {
      await connection.receivedAtLeast(20);
      connection.socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    };
    const client = await rawClient(proxy.proxy.address);
    client.socket.write(handshakeOffers([8, 8, 5]));
    await client.closed;
    await eventually(async () => {
      assert.equal(await proxy.metric('neo4j_proxy_connections_rejected_total', { reason: 'upstream_not_bolt' }), 1);
    });
    assert.ok(proxy.logs.some((line) => line.includes('not a Bolt port')));
  });

  it('no common version: the client gets the zero answer and the close, counted as version "none"', async () => {
    upstream.script = async (connection) => {
      await connection.receivedAtLeast(20);
      connection.socket.end(Buffer.alloc(4));
    };
    const client = await rawClient(proxy.proxy.address);
    client.socket.write(handshakeOffers([0, 0, 9]));
    await client.closed;
    assert.deepEqual(client.received(), Buffer.alloc(4));
    await eventually(async () => {
      assert.equal(await proxy.metric('neo4j_proxy_bolt_versions_total', { version: 'none' }), 1);
      assert.equal(await proxy.metric('neo4j_proxy_client_connections_closed_total', { reason: 'server_closed' }), 1);
    });
  });

  it('a manifest client choosing a version the server never announced is labelled "other"', async () => {
    upstream.script = async (connection) => {
      await connection.receivedAtLeast(20);
      // Manifest v1: one range, 5.8 down to 5.6, no capabilities.
      connection.socket.write(Buffer.from([0, 0, 1, 0xff, 1, 0, 2, 8, 5, 0]));
    };
    const client = await rawClient(proxy.proxy.address);
    client.socket.write(handshakeOffers(MANIFEST_V1_OFFER));
    await eventually(() => assert.equal(client.received().length, 10));
    client.socket.write(Buffer.from([0, 0, 99, 99, 0]));
    await eventually(async () => {
      assert.equal(await proxy.metric('neo4j_proxy_bolt_versions_total', { version: 'other' }), 1);
    });
    client.socket.destroy();
  });

  it('undecodable metadata from the server closes the connection', async () => {
    upstream.script = async (connection) => {
      await connection.receivedAtLeast(20);
      connection.socket.write(Buffer.from([0, 0, 8, 5]));
      await connection.receivedAtLeast(21);
      // FAILURE {code: <reserved marker 0xC4>}
      connection.socket.write(chunkMessage(Buffer.from([0xb1, 0x7f, 0xa1, 0x84, 0x63, 0x6f, 0x64, 0x65, 0xc4])));
    };
    const client = await rawClient(proxy.proxy.address);
    client.socket.write(handshakeOffers([8, 8, 5]));
    await eventually(() => assert.equal(client.received().length, 4));
    client.socket.write(message(BoltSignature.HELLO, map({ user_agent: 'neo4j-go/5.20.0' })));
    await client.closed;
    assert.equal(client.received().length, 4, 'the undecodable FAILURE is not forwarded');
    await eventually(async () => {
      assert.equal(await proxy.metric('neo4j_proxy_connections_rejected_total', { reason: 'undecodable_message' }), 1);
    });
  });
});
