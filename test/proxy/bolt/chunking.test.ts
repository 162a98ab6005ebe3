import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BoltDechunker,
  BoltFramingError,
  type BoltFramingErrorReason,
  type BoltMessageFrame,
  chunkMessage,
} from '../../../src/proxy/bolt/index.ts';
import { byteByByte, dechunkAll, hex, payloadOf, splitAt } from './bolt-test-helpers.ts';

const keepAll = (): boolean => true;

function expectFramingError(reason: BoltFramingErrorReason, run: () => unknown): void {
  assert.throws(run, (error: unknown) => error instanceof BoltFramingError && error.reason === reason);
}

function describeFrames(frames: readonly BoltMessageFrame[]): string[] {
  return frames.map((frame) => `${frame.signature.toString(16)}:${frame.payload?.toString('hex') ?? 'skipped'}`);
}

describe('chunkMessage', () => {
  it('writes the spec example: 16 bytes in one chunk, then the end marker', () => {
    const data = hex('00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F');
    assert.deepEqual(chunkMessage(data), hex('00 10 | 00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F | 00 00'));
  });

  it('splits at the chunk size limit', () => {
    const wire = chunkMessage(Buffer.alloc(70_000, 7));
    assert.equal(wire.readUInt16BE(0), 0xffff);
    assert.equal(wire.readUInt16BE(2 + 0xffff), 70_000 - 0xffff);
    assert.equal(wire.length, 70_000 + 6);
    assert.deepEqual(chunkMessage(Buffer.from([1, 2, 3]), 2), hex('00 02 01 02 | 00 01 03 | 00 00'));
  });
});

describe('BoltDechunker', () => {
  it('emits the spec examples: two messages with a NOOP between them', () => {
    const frames: BoltMessageFrame[] = [];
    const dechunker = new BoltDechunker({ onMessage: (frame) => frames.push(frame), keepPayload: keepAll });
    dechunker.feed(hex('00 03 B1 70 A0 00 00 | 00 00 | 00 02 B0 7E 00 00'));
    assert.deepEqual(describeFrames(frames), ['70:b170a0', '7e:b07e']);
    assert.equal(dechunker.noopCount, 1);
    assert.deepEqual(
      frames.map(({ wireStart, wireEnd, size, fieldCount }) => ({ wireStart, wireEnd, size, fieldCount })),
      [
        { wireStart: 0, wireEnd: 7, size: 3, fieldCount: 1 },
        { wireStart: 9, wireEnd: 15, size: 2, fieldCount: 0 },
      ],
    );
  });

  it('joins a message split over several chunks and reads', () => {
    const payload = payloadOf(0x70, new Map([['server', 'Neo4j/5.26.0']]));
    const wire = chunkMessage(payload, 3);
    const frames = dechunkAll(byteByByte(wire), { keepPayload: keepAll });
    assert.equal(frames.length, 1);
    assert.deepEqual(frames[0]?.payload, payload);
    assert.equal(frames[0]?.wireEnd, wire.length);
  });

  it('takes the signature from the second chunk when the first holds only the marker', () => {
    const frames = dechunkAll([hex('00 01 B1 | 00 02 71 90 | 00 00')], { keepPayload: keepAll });
    assert.deepEqual(describeFrames(frames), ['71:b17190']);
  });

  it('keeps payloads only for the signatures asked for, and still reports the others', () => {
    const asked: number[] = [];
    const record = chunkMessage(payloadOf(0x71, ['x'.repeat(1000)]));
    const success = chunkMessage(payloadOf(0x70, new Map()));
    const frames = dechunkAll([Buffer.concat([record, success])], {
      keepPayload: (signature) => {
        asked.push(signature);
        return signature === 0x70;
      },
    });
    assert.deepEqual(asked, [0x71, 0x70], 'asked once per message');
    assert.deepEqual(describeFrames(frames), ['71:skipped', '70:b170a0']);
    assert.equal(frames[0]?.size, 1000 + 6);
  });

  it('hands out payloads that stay valid when the caller reuses its read buffer', () => {
    const frames: BoltMessageFrame[] = [];
    const dechunker = new BoltDechunker({ onMessage: (frame) => frames.push(frame), keepPayload: keepAll });
    const readBuffer = hex('00 03 B1 70 A0 00 00');
    dechunker.feed(readBuffer);
    readBuffer.fill(0);
    assert.deepEqual(frames[0]?.payload, hex('B1 70 A0'));
  });

  it('throws a typed error when a kept payload exceeds the bound, and stays failed', () => {
    const frames: BoltMessageFrame[] = [];
    const dechunker = new BoltDechunker({
      onMessage: (frame) => frames.push(frame),
      keepPayload: (signature) => signature === 0x10,
      maxPayloadBytes: 100,
    });
    dechunker.feed(chunkMessage(payloadOf(0x71, ['y'.repeat(500)])));
    assert.equal(frames.length, 1, 'an unkept message of any size is fine');
    expectFramingError('message-too-large', () => dechunker.feed(chunkMessage(payloadOf(0x10, 'z'.repeat(200)))));
    expectFramingError('stream-failed', () => dechunker.feed(hex('00 00')));
  });

  it('detects an oversized payload from the chunk headers, before its bytes arrive', () => {
    const dechunker = new BoltDechunker({ onMessage: () => {}, keepPayload: keepAll, maxPayloadBytes: 100 });
    expectFramingError('message-too-large', () => dechunker.feed(hex('00 FF B1 10')));
  });

  it("drops an oversized payload instead under oversizedPayload 'drop'", () => {
    const frames = dechunkAll(
      [chunkMessage(payloadOf(0x10, 'q'.repeat(300), new Map(), new Map())), hex('00 02 B0 0F 00 00')],
      { keepPayload: keepAll, maxPayloadBytes: 100, oversizedPayload: 'drop' },
    );
    assert.deepEqual(
      frames.map(({ signature, payload, payloadDropped }) => ({ signature, payload, payloadDropped })),
      [
        { signature: 0x10, payload: null, payloadDropped: true },
        { signature: 0x0f, payload: hex('B0 0F'), payloadDropped: false },
      ],
    );
  });

  it('refuses a message that is not a struct, or ends before its signature', () => {
    expectFramingError('message-not-a-struct', () => dechunkAll([hex('00 02 A0 70 00 00')]));
    expectFramingError('message-too-short', () => dechunkAll([hex('00 01 B0 00 00')]));
  });

  it('reports where an incomplete message began, for a proxy that may replace it', () => {
    const dechunker = new BoltDechunker({ onMessage: () => {} });
    assert.equal(dechunker.pendingMessageStart, null);
    dechunker.feed(hex('00 02 B0 0F 00 00 | 00'));
    assert.equal(dechunker.pendingMessageStart, 6, 'half a chunk header');
    dechunker.feed(hex('03 B1'));
    assert.equal(dechunker.pendingMessageStart, 6);
    assert.equal(dechunker.pendingMessageSignature, null, 'not known before the second byte');
    dechunker.feed(hex('70'));
    assert.equal(dechunker.pendingMessageSignature, 0x70);
    dechunker.feed(hex('A0 00 00'));
    assert.equal(dechunker.pendingMessageStart, null);
    assert.equal(dechunker.pendingMessageSignature, null);
    assert.equal(dechunker.bytesFed, 13);
  });

  it('marks itself failed when the message handler throws', () => {
    const dechunker = new BoltDechunker({
      onMessage: () => {
        throw new Error('handler bug');
      },
    });
    assert.throws(() => dechunker.feed(hex('00 02 B0 0F 00 00')), /handler bug/);
    expectFramingError('stream-failed', () => dechunker.feed(hex('00 00')));
  });

  it('gives identical frames however a stream of many messages is cut into reads', () => {
    const payloads = [
      payloadOf(0x01, new Map([['user_agent', 'neo4j-python/5.28.1']])),
      payloadOf(0x10, 'RETURN 1', new Map(), new Map()),
      payloadOf(0x3f, new Map([['n', 1000]])),
      payloadOf(0x71, [1, 2, 3]),
      payloadOf(0x70, new Map([['has_more', false]])),
    ];
    const stream = Buffer.concat([hex('00 00'), ...payloads.map((payload) => chunkMessage(payload, 5)), hex('00 00')]);
    const whole = dechunkAll([stream], { keepPayload: keepAll });
    assert.deepEqual(
      whole.map((frame) => frame.payload),
      payloads,
    );
    for (let cut = 0; cut <= stream.length; cut++) {
      assert.deepEqual(dechunkAll(splitAt(stream, [cut, cut + 3]), { keepPayload: keepAll }), whole);
    }
  });
});

describe('BoltDechunker kept payloads', () => {
  for (const size of [2, 10, 64, 65, 1000]) {
    it(`copies a ${size}-byte payload out of the reads, exactly sized, however it is split`, () => {
      const payload = Buffer.concat([hex('B1 70'), Buffer.alloc(size - 2, 0x41)]);
      payload[payload.length - 1] = 0x5a;
      for (const wire of [chunkMessage(payload), chunkMessage(payload, 7)]) {
        for (const reads of [[Buffer.from(wire)], splitAt(wire, [3, 5, 40]), byteByByte(wire)]) {
          const frames = dechunkAll(reads, { keepPayload: keepAll });
          for (const read of reads) read.fill(0xff);
          assert.equal(frames.length, 1);
          assert.equal(frames[0]?.payload?.length, size);
          assert.deepEqual(frames[0]?.payload, payload, 'the payload does not alias the bytes fed in');
        }
      }
    });
  }
});
