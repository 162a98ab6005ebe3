import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LateReplacementError, ServerStreamForwarder } from '../../src/proxy/forwarder.ts';

const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');
const joined = (pieces: Buffer[]): string => Buffer.concat(pieces).toString('latin1');

describe('ServerStreamForwarder', () => {
  it('hands a read on as it came when nothing is held or replaced', () => {
    const forwarder = new ServerStreamForwarder();
    const read = bytes('abcdef');
    const [piece, ...rest] = forwarder.take(read, 0, 6);
    assert.equal(piece, read, 'the read itself, not a copy');
    assert.deepEqual(rest, []);
  });

  it('holds from safeEnd, then splices the replacement over [start, end) across reads', () => {
    const forwarder = new ServerStreamForwarder();
    // "ab" goes out; "RRR" (stream bytes 2..5) is a message that may be replaced, still incomplete.
    assert.equal(joined(forwarder.take(bytes('abRR'), 0, 2)), 'ab');
    assert.equal(forwarder.heldBytes, 2);
    forwarder.replace(2, 5, bytes('xyz!'));
    assert.equal(joined(forwarder.take(bytes('Rcd'), 4, 7)), 'xyz!cd');
    assert.equal(forwarder.heldBytes, 0);
    assert.deepEqual(forwarder.flush(), []);
  });

  it('refuses a replacement for a message part of which already went out, and takes one that starts where sending stopped', () => {
    const forwarder = new ServerStreamForwarder();
    assert.equal(joined(forwarder.take(bytes('abcd'), 0, 3)), 'abc');
    assert.throws(() => forwarder.replace(2, 6, bytes('late')), LateReplacementError);
    forwarder.replace(3, 6, bytes('ok'));
    assert.equal(joined(forwarder.take(bytes('efg'), 4, 7)), 'okg');
  });

  it('flushes what it held, unchanged, when the stream ends', () => {
    const forwarder = new ServerStreamForwarder();
    assert.equal(joined(forwarder.take(bytes('abcd'), 0, 1)), 'a');
    assert.equal(joined(forwarder.flush()), 'bcd');
  });
});
