import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeBoltMessage,
  PackStreamFloat,
  type PackStreamValue,
  rewriteRouteSuccess,
  rewriteRoutingProcedureRecord,
  BoltSignature as S,
} from '../../../src/proxy/bolt/index.ts';
import { dechunkAll, map, payloadOf, routingTable } from './bolt-test-helpers.ts';

const ADVERTISED = 'bolt-proxy.internal:7687';

/** Dechunks rewritten wire bytes back into one decoded message. */
function decodeWire(wire: Buffer | null): PackStreamValue[] {
  assert.ok(wire !== null);
  const frames = dechunkAll([wire], { keepPayload: () => true });
  assert.equal(frames.length, 1);
  assert.equal(frames[0]?.wireEnd, wire.length);
  return decodeBoltMessage(frames[0]?.payload ?? Buffer.alloc(0), { preserveFloats: true }).fields;
}

describe('rewriteRouteSuccess', () => {
  it('replaces every address, once per role, and leaves everything else as it was', () => {
    const metadata = map({
      rt: routingTable(['a:7687', 'b:7687', 'c:7687']),
      weight: new PackStreamFloat(1),
    });
    const [rewritten] = decodeWire(rewriteRouteSuccess(payloadOf(S.SUCCESS, metadata), ADVERTISED));
    assert.deepEqual(
      rewritten,
      map({
        rt: map({
          ttl: 300,
          db: 'neo4j',
          servers: [
            map({ addresses: [ADVERTISED], role: 'ROUTE' }),
            map({ addresses: [ADVERTISED], role: 'READ' }),
            map({ addresses: [ADVERTISED], role: 'WRITE' }),
          ],
        }),
        weight: new PackStreamFloat(1),
      }),
    );
  });

  it('keeps a role empty when the cluster has no such server (no leader during an election)', () => {
    const metadata = map({
      rt: map({
        ttl: 10,
        servers: [
          map({ addresses: ['a:7687'], role: 'ROUTE' }),
          map({ addresses: ['a:7687'], role: 'READ' }),
          map({ addresses: [], role: 'WRITE' }),
        ],
      }),
    });
    const [rewritten] = decodeWire(rewriteRouteSuccess(payloadOf(S.SUCCESS, metadata), ADVERTISED));
    assert.ok(rewritten instanceof Map);
    const table = rewritten.get('rt');
    assert.ok(table instanceof Map);
    assert.deepEqual(table.get('servers'), [
      map({ addresses: [ADVERTISED], role: 'ROUTE' }),
      map({ addresses: [ADVERTISED], role: 'READ' }),
      map({ addresses: [], role: 'WRITE' }),
    ]);
  });

  it('merges entries that repeat a role', () => {
    const metadata = map({
      rt: map({
        servers: [map({ addresses: ['a:1'], role: 'READ' }), map({ addresses: ['b:1'], role: 'READ' })],
      }),
    });
    const [rewritten] = decodeWire(rewriteRouteSuccess(payloadOf(S.SUCCESS, metadata), ADVERTISED));
    assert.ok(rewritten instanceof Map);
    const table = rewritten.get('rt');
    assert.ok(table instanceof Map);
    assert.deepEqual(table.get('servers'), [map({ addresses: [ADVERTISED], role: 'READ' })]);
  });

  it('returns null for a SUCCESS without a routing table', () => {
    assert.equal(rewriteRouteSuccess(payloadOf(S.SUCCESS, map({ has_more: false })), ADVERTISED), null);
    assert.equal(rewriteRouteSuccess(payloadOf(S.FAILURE, map({ code: 'x' })), ADVERTISED), null);
  });
});

describe('rewriteRoutingProcedureRecord', () => {
  const servers = [
    map({ addresses: ['a:7687', 'b:7687'], role: 'WRITE' }),
    map({ addresses: ['b:7687'], role: 'READ' }),
    map({ addresses: ['a:7687', 'b:7687'], role: 'ROUTE' }),
  ];
  const expected = [
    map({ addresses: [ADVERTISED], role: 'WRITE' }),
    map({ addresses: [ADVERTISED], role: 'READ' }),
    map({ addresses: [ADVERTISED], role: 'ROUTE' }),
  ];

  it('rewrites the servers column named by the RUN SUCCESS fields', () => {
    const record = payloadOf(S.RECORD, [300, servers]);
    assert.deepEqual(decodeWire(rewriteRoutingProcedureRecord(record, ADVERTISED, ['ttl', 'servers'])), [
      [300, expected],
    ]);
  });

  it('finds the servers column by shape without field names', () => {
    const record = payloadOf(S.RECORD, [servers, 300]);
    assert.deepEqual(decodeWire(rewriteRoutingProcedureRecord(record, ADVERTISED)), [[expected, 300]]);
  });

  it('returns null for records that hold no routing table', () => {
    assert.equal(rewriteRoutingProcedureRecord(payloadOf(S.RECORD, [1, 'x']), ADVERTISED), null);
    assert.equal(rewriteRoutingProcedureRecord(payloadOf(S.SUCCESS, map({})), ADVERTISED), null);
  });
});
