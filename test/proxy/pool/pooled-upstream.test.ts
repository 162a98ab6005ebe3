/**
 * PooledUpstream's handshake against a local TCP server scripted byte for byte: answers Neo4j gives
 * (the manifest split across reads, HELLO's SUCCESS right behind it) and ones it cannot be made to
 * give (an over-long varint, which the codec refuses), and learnServerVersions against a server that
 * accepts and never answers.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { BoltSignature, requestMessage, successMessage } from '../../../src/proxy/bolt/index.ts';
import { PooledUpstream, UpstreamClosedError, type UpstreamState } from '../../../src/proxy/pool/pooled-upstream.ts';
import { learnServerVersions } from '../../../src/proxy/pool/server-versions.ts';
import type { UpstreamTarget } from '../../../src/proxy/upstream.ts';

const servers: net.Server[] = [];
const sockets = new Set<net.Socket>();
after(async () => {
  for (const socket of sockets) socket.destroy();
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
});

/** A server that, once it has the magic and four offers, writes `answer`'s pieces one read at a time. */
async function scriptedServer(answer: readonly Buffer[]): Promise<UpstreamTarget> {
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => socket.destroy());
    let received = 0;
    socket.on('data', async (data: Buffer) => {
      const before = received;
      received += data.length;
      if (before >= 20 || received < 20) return;
      for (const piece of answer) {
        socket.write(piece);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return { host: '127.0.0.1', port, tls: { mode: 'off' }, uri: `bolt://127.0.0.1:${port}` };
}

function open(target: UpstreamTarget, states: UpstreamState[]): PooledUpstream {
  return new PooledUpstream(target, {
    id: 1,
    key: 'k',
    version: { major: 5, minor: 4 },
    capabilities: 0n,
    maxMessageBytes: 1 << 20,
    lifetimeMs: 60_000,
    now: () => 0,
    onConnected: () => {},
    onState: (_upstream, _from, to) => states.push(to),
  });
}

const HELLO = requestMessage(BoltSignature.HELLO, new Map([['user_agent', 'test/1.0']]));
/** Manifest v1: one range (5.0 to 5.8), capabilities 0. */
const MANIFEST = Buffer.from([0, 0, 1, 0xff, 1, 0, 8, 8, 5, 0]);

describe('PooledUpstream handshake', () => {
  it('reads a manifest answer split across reads, then the HELLO reply', async () => {
    const states: UpstreamState[] = [];
    const bytes = Buffer.concat([MANIFEST, successMessage(new Map([['server', 'Neo4j/5.26.0']]))]);
    const target = await scriptedServer([...bytes].map((byte) => Buffer.from([byte])));
    const upstream = open(target, states);
    const reply = await upstream.handshakeAndHello(0n, HELLO);
    assert.equal(reply.signature, BoltSignature.SUCCESS);
    assert.equal(upstream.serverAgent, 'Neo4j/5.26.0');
    assert.deepEqual(states, ['saying_hello']);
    upstream.destroy();
  });

  it('an over-long varint in the manifest answer closes the upstream with the codec’s error', async () => {
    const states: UpstreamState[] = [];
    // The range count's varint runs on past 10 bytes: the codec throws where a private copy waited for more.
    const target = await scriptedServer([Buffer.from([0, 0, 1, 0xff]), Buffer.alloc(11, 0x80)]);
    const upstream = open(target, states);
    await assert.rejects(upstream.handshakeAndHello(0n, HELLO), (error: unknown) => {
      assert.ok(error instanceof UpstreamClosedError, 'an UpstreamClosedError');
      assert.match(error.message, /longer than 64 bits/);
      return true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    while (upstream.state !== 'gone') await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(states, ['gone'], 'never got to HELLO');
  });

  it('a server answering a plain version, not the manifest, is refused', async () => {
    const states: UpstreamState[] = [];
    const target = await scriptedServer([Buffer.from([0, 0, 4, 5])]);
    const upstream = open(target, states);
    await assert.rejects(upstream.handshakeAndHello(0n, HELLO), /did not answer the manifest handshake/);
  });
});

describe('learnServerVersions', () => {
  it('gives up on a server that accepts and never answers', async () => {
    const target = await scriptedServer([]);
    await assert.rejects(learnServerVersions(target, 100), /no handshake answer from Neo4j within 100 ms/);
  });

  it('reads the ranges of a manifest answer', async () => {
    const target = await scriptedServer([MANIFEST]);
    assert.deepEqual(await learnServerVersions(target, 5000), {
      ranges: [{ major: 5, minMinor: 0, maxMinor: 8 }],
      capabilities: 0n,
    });
  });
});
