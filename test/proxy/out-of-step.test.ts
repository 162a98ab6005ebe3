/**
 * A Neo4j out of step with its connection, which the real one never is: a stand-in server answers the
 * HELLO with two SUCCESSes. From then on every reply would be matched to the wrong request, so the proxy
 * closes the connection (reason out_of_step) instead of forwarding it.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { encodeManifestAnswer, successMessage } from '../../src/proxy/bolt/index.ts';
import { connectBolt58, hello, map } from '../support/raw-bolt.ts';
import { eventually, startTestProxy, type TestProxy } from './support.ts';

/** Offers (20 bytes), then the client's choice (version and a one-byte capability varint). */
const HANDSHAKE_BYTES = 20;
const CHOICE_BYTES = 5;

function startOutOfStepServer(): Promise<net.Server> {
  const server = net.createServer((socket) => {
    let received = 0;
    let answered = false;
    let replied = false;
    socket.on('error', () => socket.destroy());
    socket.on('data', (data: Buffer) => {
      received += data.length;
      if (!answered && received >= HANDSHAKE_BYTES) {
        answered = true;
        socket.write(encodeManifestAnswer([{ major: 5, minMinor: 0, maxMinor: 8 }], 0n));
      }
      if (!replied && received > HANDSHAKE_BYTES + CHOICE_BYTES) {
        replied = true;
        socket.write(
          Buffer.concat([successMessage(map({ server: 'Neo4j/5.26.0', connection_id: 'bolt-1' })), successMessage()]),
        );
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('a reply with no request waiting', () => {
  let upstream: net.Server;
  let proxy: TestProxy;
  before(async () => {
    upstream = await startOutOfStepServer();
    const { port } = upstream.address() as net.AddressInfo;
    proxy = await startTestProxy(`bolt://127.0.0.1:${port}`, { pooling: { mode: 'off' } });
  });
  after(async () => {
    await proxy?.stop();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  it('closes the connection as out_of_step, forwarding none of it', async () => {
    const client = await connectBolt58(proxy.proxy.address, [hello('out-of-step-test/1.0')]);
    await client.waitForClose();
    await assert.rejects(client.readMessage(100), 'nothing of the out-of-step read reached the client');
    await eventually(async () => {
      assert.equal(await proxy.metric('neo4j_proxy_connections_rejected_total', { reason: 'out_of_step' }), 1);
    }, 5000);
    assert.ok(proxy.logs.some((line) => line.includes('"reason":"out_of_step"')));
  });
});
