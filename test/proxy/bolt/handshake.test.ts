import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BoltHandshake,
  BoltHandshakeError,
  type BoltHandshakeErrorReason,
  formatBoltVersion,
  type HandshakeProgress,
  type ServerHandshakeProgress,
} from '../../../src/proxy/bolt/index.ts';
import { byteByByte, hex, wireOf } from './bolt-test-helpers.ts';

const DRIVER_6_3_HELLO_OFFER = hex('60 60 B0 17 | 00 00 01 FF | 00 08 08 05 | 00 02 04 04 | 00 00 00 03');
/** Manifest answer: 2 ranges (5.8-5.6, 4.4-4.0), capabilities 0b1001. */
const MANIFEST_ANSWER = hex('00 00 01 FF | 02 | 00 02 08 05 | 00 04 04 04 | 09');
const HELLO = wireOf(0x01, new Map([['user_agent', 'neo4j-javascript/6.3.0']]));

function leftoverOf(progress: HandshakeProgress | ServerHandshakeProgress): Buffer {
  assert.notEqual(progress.state, 'incomplete');
  return progress.state === 'incomplete' ? Buffer.alloc(0) : progress.leftover;
}

function expectHandshakeError(reason: BoltHandshakeErrorReason, run: () => unknown): void {
  assert.throws(run, (error: unknown) => error instanceof BoltHandshakeError && error.reason === reason);
}

describe('BoltHandshake, client side', () => {
  it('decodes the neo4j-driver 6.3 offers, manifest first, 4.3-style ranges after', () => {
    const handshake = new BoltHandshake();
    assert.deepEqual(handshake.feedClient(DRIVER_6_3_HELLO_OFFER), { state: 'incomplete' });
    assert.deepEqual(handshake.clientOffers, [
      { kind: 'manifest', manifestVersion: 1 },
      { kind: 'versions', range: { major: 5, maxMinor: 8, minMinor: 0 } },
      { kind: 'versions', range: { major: 4, maxMinor: 4, minMinor: 2 } },
      { kind: 'versions', range: { major: 3, maxMinor: 0, minMinor: 0 } },
    ]);
    assert.equal(handshake.clientComplete, false, 'waits for the server: it may answer with a manifest');
  });

  it('completes after the server picks a fixed version, leaving the HELLO that follows', () => {
    const handshake = new BoltHandshake();
    handshake.feedClient(hex('60 60 B0 17 | 00 00 04 04 | 00 00 00 00 | 00 00 00 00 | 00 00 00 00'));
    assert.equal(handshake.clientComplete, true, 'no manifest offered: nothing more to come from the client');
    assert.equal(leftoverOf(handshake.feedServer(hex('00 00 04 04'))).length, 0);
    assert.deepEqual(handshake.negotiatedVersion, { major: 4, minor: 4 });
    assert.equal(handshake.outcome, 'agreed');
    assert.deepEqual(leftoverOf(handshake.feedClient(HELLO)), HELLO);
  });

  it('reads the chosen version and capabilities after a manifest, leftover being the coalesced HELLO', () => {
    const handshake = new BoltHandshake();
    handshake.feedClient(DRIVER_6_3_HELLO_OFFER);
    assert.equal(leftoverOf(handshake.feedServer(MANIFEST_ANSWER)).length, 0);
    assert.equal(handshake.negotiatedVersion, null, 'the client has not chosen yet');
    assert.deepEqual(handshake.serverVersionRanges, [
      { major: 5, maxMinor: 8, minMinor: 6 },
      { major: 4, maxMinor: 4, minMinor: 0 },
    ]);
    assert.equal(handshake.serverCapabilities, 9n);
    const leftover = leftoverOf(handshake.feedClient(Buffer.concat([hex('00 00 07 05 | 08'), HELLO])));
    assert.deepEqual(leftover, HELLO);
    assert.deepEqual(handshake.negotiatedVersion, { major: 5, minor: 7 });
    assert.equal(formatBoltVersion(handshake.negotiatedVersion ?? { major: 0, minor: 0 }), '5.7');
    assert.equal(handshake.clientCapabilities, 8n);
    assert.equal(handshake.usedManifest, true);
    assert.equal(handshake.outcome, 'agreed');
  });

  it('gives the same result when every byte of both sides arrives alone', () => {
    const handshake = new BoltHandshake();
    for (const byte of byteByByte(DRIVER_6_3_HELLO_OFFER)) {
      assert.equal(handshake.feedClient(byte).state, 'incomplete');
    }
    const serverBytes = byteByByte(MANIFEST_ANSWER);
    for (const byte of serverBytes.slice(0, -1)) assert.equal(handshake.feedServer(byte).state, 'incomplete');
    assert.equal(handshake.feedServer(serverBytes.at(-1) ?? Buffer.alloc(0)).state, 'complete');
    const clientRest = byteByByte(Buffer.concat([hex('00 00 08 05 | 80 01'), HELLO]));
    const leftovers: Buffer[] = [];
    for (const byte of clientRest) {
      const progress = handshake.feedClient(byte);
      if (progress.state === 'complete') leftovers.push(progress.leftover);
    }
    assert.deepEqual(Buffer.concat(leftovers), HELLO);
    assert.deepEqual(handshake.negotiatedVersion, { major: 5, minor: 8 });
    assert.equal(handshake.clientCapabilities, 128n, 'two-byte varint 80 01');
  });

  it('reads multi-byte varints least significant group first (spec example FF 82 71 is not 127)', () => {
    const handshake = new BoltHandshake();
    handshake.feedClient(DRIVER_6_3_HELLO_OFFER);
    handshake.feedServer(hex('00 00 01 FF | 00 | FF 82 71'));
    assert.deepEqual(handshake.serverVersionRanges, []);
    assert.equal(handshake.serverCapabilities, 0x7fn | (0x02n << 7n) | (0x71n << 14n));
  });

  it('holds client bytes sent before the server answered, then hands them back', () => {
    const handshake = new BoltHandshake();
    handshake.feedClient(Buffer.concat([DRIVER_6_3_HELLO_OFFER, hex('00 00 08 05 | 00')]));
    handshake.feedServer(MANIFEST_ANSWER);
    const leftover = leftoverOf(handshake.feedClient(HELLO));
    assert.deepEqual(leftover, HELLO);
    assert.deepEqual(handshake.negotiatedVersion, { major: 5, minor: 8 });
  });

  it('hands back held client bytes when the server then picks a fixed version', () => {
    const handshake = new BoltHandshake();
    handshake.feedClient(Buffer.concat([DRIVER_6_3_HELLO_OFFER, HELLO.subarray(0, 5)]));
    handshake.feedServer(hex('00 00 04 04'));
    assert.deepEqual(leftoverOf(handshake.feedClient(HELLO.subarray(5))), HELLO);
    assert.deepEqual(leftoverOf(handshake.feedClient(hex('00 00'))), hex('00 00'), 'and nothing twice');
  });

  it('recognises a manifest offer in any slot', () => {
    const handshake = new BoltHandshake();
    handshake.feedClient(hex('60 60 B0 17 | 00 00 04 04 | 00 00 01 FF | 00 00 00 00 | 00 00 00 00'));
    assert.equal(handshake.clientComplete, false);
    handshake.feedServer(hex('00 00 04 04'));
    assert.equal(handshake.clientComplete, true, 'a fixed answer means no choice follows');
    assert.equal(handshake.outcome, 'agreed');
  });

  it('refuses a bad magic and names TLS and HTTP clients (browsers, WebSocket upgrades) apart', () => {
    expectHandshakeError('bad-magic', () => new BoltHandshake().feedClient(hex('60 60 B0 18')));
    expectHandshakeError('bad-magic', () => new BoltHandshake().feedClient(hex('00 00 00 00')));
    expectHandshakeError('tls-client-hello', () => new BoltHandshake().feedClient(hex('16 03 01 02 00')));
    expectHandshakeError('http-request', () => new BoltHandshake().feedClient(Buffer.from('GET / HTTP/1.1\r\n')));
    expectHandshakeError('http-request', () => new BoltHandshake().feedClient(Buffer.from('POST /db')));
  });

  it('refuses a flood of client bytes before the server answered', () => {
    const handshake = new BoltHandshake();
    handshake.feedClient(DRIVER_6_3_HELLO_OFFER);
    expectHandshakeError('unexpected-client-bytes', () => handshake.feedClient(Buffer.alloc(2000)));
  });
});

describe('BoltHandshake, server side', () => {
  it('reports no match on 00 00 00 00', () => {
    const handshake = new BoltHandshake();
    handshake.feedClient(DRIVER_6_3_HELLO_OFFER);
    assert.equal(handshake.feedServer(hex('00 00 00 00')).state, 'no-match');
    assert.equal(handshake.outcome, 'no-match');
    assert.equal(handshake.negotiatedVersion, null);
    assert.equal(handshake.clientComplete, true);
  });

  it('names an HTTP answer: the upstream is an HTTP port', () => {
    const handshake = new BoltHandshake();
    handshake.feedClient(DRIVER_6_3_HELLO_OFFER);
    expectHandshakeError('http-response', () => handshake.feedServer(Buffer.from('HTTP/1.1 400 Bad Request\r\n')));
  });

  it('refuses answers no Bolt server gives', () => {
    expectHandshakeError('invalid-server-version', () => new BoltHandshake().feedServer(hex('00 02 04 04')));
    expectHandshakeError('invalid-server-version', () => new BoltHandshake().feedServer(hex('01 00 04 04')));
    expectHandshakeError('unsupported-manifest', () => new BoltHandshake().feedServer(hex('00 00 02 FF')));
    expectHandshakeError('manifest-too-large', () => new BoltHandshake().feedServer(hex('00 00 01 FF | 80 01')));
    expectHandshakeError('varint-overflow', () =>
      new BoltHandshake().feedServer(hex('00 00 01 FF | 00 | FF FF FF FF FF FF FF FF FF FF 01')),
    );
  });

  it('returns bytes after its answer as leftover, and everything once complete', () => {
    const handshake = new BoltHandshake();
    assert.deepEqual(leftoverOf(handshake.feedServer(hex('00 00 06 05 | 00 03'))), hex('00 03'));
    assert.deepEqual(leftoverOf(handshake.feedServer(hex('01 02'))), hex('01 02'));
  });
});
