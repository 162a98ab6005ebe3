import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BoltHandshake,
  BoltSignature,
  decodeBoltMessage,
  encodeManifestAnswer,
  encodeVarint,
  ignoredMessage,
  isSummary,
  messageMetadata,
  messagePayload,
  PackStreamError,
  requestMessage,
  successMessage,
} from '../../../src/proxy/bolt/index.ts';
import { dechunkAll, hex, map, payloadOf } from './bolt-test-helpers.ts';

describe('messageMetadata', () => {
  it('is the first field of a message when it is a map', () => {
    const hello = payloadOf(BoltSignature.HELLO, map({ user_agent: 'neo4j-javascript/6.3.0', routing: null }));
    assert.deepEqual(
      messageMetadata(hello),
      new Map([
        ['user_agent', 'neo4j-javascript/6.3.0'],
        ['routing', null],
      ]),
    );
  });

  it('is null for a message whose first field is not a map, one with no fields, and no payload', () => {
    assert.equal(messageMetadata(payloadOf(BoltSignature.RUN, 'RETURN 1', map({}), map({}))), null);
    assert.equal(messageMetadata(payloadOf(BoltSignature.RECORD, [1, 2])), null);
    assert.equal(messageMetadata(payloadOf(BoltSignature.RESET)), null);
    assert.equal(messageMetadata(null), null);
  });

  it('throws PackStreamError on bytes that are not a message, for the caller to close on', () => {
    assert.throws(() => messageMetadata(hex('B1 70 D0')), PackStreamError);
    assert.throws(() => messageMetadata(hex('A0')), PackStreamError);
  });
});

describe('isSummary', () => {
  it('is true for SUCCESS, FAILURE and IGNORED only', () => {
    const summaries = Object.entries(BoltSignature)
      .filter(([, signature]) => isSummary(signature))
      .map(([name]) => name)
      .sort();
    assert.deepEqual(summaries, ['FAILURE', 'IGNORED', 'SUCCESS']);
    assert.equal(isSummary(0x00), false);
  });
});

describe('message encoders', () => {
  it('write the exact bytes Neo4j and drivers write for SUCCESS {}, IGNORED and RESET', () => {
    assert.deepEqual(successMessage(), hex('00 03 | B1 70 A0 | 00 00'));
    assert.deepEqual(ignoredMessage(), hex('00 02 | B0 7E | 00 00'));
    assert.deepEqual(requestMessage(BoltSignature.RESET), hex('00 02 | B0 0F | 00 00'));
    assert.deepEqual(messagePayload(BoltSignature.LOGOFF), hex('B0 6B'));
    assert.deepEqual(messagePayload(BoltSignature.SUCCESS, map({})), hex('B1 70 A0'));
  });

  it('carry the metadata map, and dechunk back to the same payload', () => {
    const logon = map({ scheme: 'basic', principal: 'neo4j', credentials: 'secret' });
    const [frame] = dechunkAll([requestMessage(BoltSignature.LOGON, logon)], { keepPayload: () => true });
    assert.equal(frame?.signature, BoltSignature.LOGON);
    assert.deepEqual(frame?.payload, messagePayload(BoltSignature.LOGON, logon));
    assert.deepEqual(messageMetadata(frame?.payload ?? null), logon);

    const [success] = dechunkAll([successMessage(map({ db: 'neo4j', has_more: false }))], { keepPayload: () => true });
    const struct = decodeBoltMessage(success?.payload ?? Buffer.alloc(0));
    assert.equal(struct.signature, BoltSignature.SUCCESS);
    assert.deepEqual(struct.fields, [map({ db: 'neo4j', has_more: false })]);
  });

  it('chunk a payload larger than one chunk', () => {
    const big = map({ text: 'x'.repeat(70_000) });
    const wire = requestMessage(BoltSignature.LOGON, big);
    assert.equal(wire.readUInt16BE(0), 0xffff);
    const [frame] = dechunkAll([wire], { keepPayload: () => true });
    assert.deepEqual(messageMetadata(frame?.payload ?? null), big);
  });
});

describe('handshake encoders', () => {
  it('encodeVarint writes 7 bits a byte, least significant group first', () => {
    assert.deepEqual(encodeVarint(0n), hex('00'));
    assert.deepEqual(encodeVarint(127n), hex('7F'));
    assert.deepEqual(encodeVarint(128n), hex('80 01'));
    assert.deepEqual(encodeVarint(0x7fn | (0x02n << 7n) | (0x71n << 14n)), hex('FF 82 71'));
    assert.deepEqual(encodeVarint(2n ** 64n - 1n), hex('FF FF FF FF FF FF FF FF FF 01'));
    assert.throws(() => encodeVarint(-1n), RangeError);
  });

  it('encodeManifestAnswer writes what BoltHandshake reads back', () => {
    const ranges = [
      { major: 5, minMinor: 6, maxMinor: 8 },
      { major: 4, minMinor: 0, maxMinor: 4 },
    ];
    const answer = encodeManifestAnswer(ranges, 9n);
    assert.deepEqual(answer, hex('00 00 01 FF | 02 | 00 02 08 05 | 00 04 04 04 | 09'));
    for (const capabilities of [0n, 128n, 2n ** 63n + 5n]) {
      const handshake = new BoltHandshake();
      handshake.feedClient(hex('60 60 B0 17 | 00 00 01 FF | 00 00 00 00 | 00 00 00 00 | 00 00 00 00'));
      assert.equal(handshake.feedServer(encodeManifestAnswer(ranges, capabilities)).state, 'complete');
      assert.deepEqual(handshake.serverVersionRanges, ranges);
      assert.equal(handshake.serverCapabilities, capabilities);
    }
  });

  it('encodeManifestAnswer with no ranges is the marker, a zero count and the capabilities', () => {
    assert.deepEqual(encodeManifestAnswer([], 0n), hex('00 00 01 FF | 00 | 00'));
  });
});
