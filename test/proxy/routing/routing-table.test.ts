/**
 * The routing table as the cluster router keeps it: ROUTE in both field shapes, the `rt` map read into
 * roles (bad tables refused, not half-read), TTL and members leaving it; and where a unit goes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BoltDechunker,
  BoltSignature,
  decodeBoltMessage,
  type PackStreamStruct,
} from '../../../src/proxy/bolt/index.ts';
import {
  isExpired,
  parseRoutingTable,
  RoutingTableError,
  routeRequest,
  splitAddress,
  withoutMember,
  withoutWriter,
} from '../../../src/proxy/routing/routing-table.ts';
import { unitRoute } from '../../../src/proxy/routing/unit-route.ts';
import { map, message, routingTable } from '../../support/raw-bolt.ts';

function dechunk(wire: Buffer): PackStreamStruct {
  const payloads: Buffer[] = [];
  const dechunker = new BoltDechunker({
    keepPayload: () => true,
    onMessage: (frame) => payloads.push(Buffer.from(frame.payload ?? [])),
  });
  dechunker.feed(wire);
  assert.equal(payloads.length, 1);
  return decodeBoltMessage(payloads[0] as Buffer);
}

function frameOf(wire: Buffer) {
  let frame: Parameters<typeof unitRoute>[0] | undefined;
  const dechunker = new BoltDechunker({ keepPayload: () => true, onMessage: (f) => (frame = { ...f }) });
  dechunker.feed(wire);
  assert.ok(frame);
  return frame;
}

describe('ROUTE request', () => {
  it('Bolt 4.4+ puts the database in the extra map, with the routing context and no bookmarks', () => {
    const request = dechunk(routeRequest({ major: 5, minor: 4 }, new Map([['address', 'seed:7687']]), 'movies'));
    assert.equal(request.signature, BoltSignature.ROUTE);
    assert.deepEqual(request.fields, [new Map([['address', 'seed:7687']]), [], new Map([['db', 'movies']])]);
    const home = dechunk(routeRequest({ major: 5, minor: 0 }, new Map(), null));
    assert.deepEqual(home.fields[2], new Map());
    const impersonating = dechunk(routeRequest({ major: 5, minor: 0 }, new Map(), null, 'alice'));
    assert.deepEqual(impersonating.fields[2], new Map([['imp_user', 'alice']]));
  });

  it('Bolt 4.3 sends the database as a string (null for the home database)', () => {
    assert.deepEqual(dechunk(routeRequest({ major: 4, minor: 3 }, new Map(), 'movies')).fields[2], 'movies');
    assert.equal(dechunk(routeRequest({ major: 4, minor: 3 }, new Map(), null)).fields[2], null);
  });
});

describe('routing table', () => {
  it('reads roles, database and TTL from the rt map', () => {
    const table = parseRoutingTable(map({ rt: routingTable(['a:1', 'b:2', 'c:3']) }), null, 1000);
    assert.deepEqual(table.writers, ['a:1']);
    assert.deepEqual(table.readers, ['b:2', 'c:3']);
    assert.deepEqual(table.routers, ['a:1', 'b:2', 'c:3']);
    assert.equal(table.database, 'neo4j');
    assert.equal(table.ttlMs, 300_000);
    assert.equal(isExpired(table, 300_999), false);
    assert.equal(isExpired(table, 301_000), true);
  });

  it('refuses a reply that is not a routing table, or an address that is not host:port', () => {
    assert.throws(() => parseRoutingTable(map({}), null, 0), RoutingTableError);
    assert.throws(() => parseRoutingTable(map({ rt: map({ servers: [] }) }), null, 0), RoutingTableError);
    const badAddress = map({ ttl: 10, servers: [map({ role: 'READ', addresses: ['no-port'] })] });
    assert.throws(() => parseRoutingTable(map({ rt: badAddress }), null, 0), /host:port/);
  });

  it('keeps a role with no member empty (no writer during an election)', () => {
    const rt = map({
      ttl: 10,
      db: 'neo4j',
      servers: [map({ role: 'WRITE', addresses: [] }), map({ role: 'READ', addresses: ['b:2'] })],
    });
    const table = parseRoutingTable(map({ rt }), null, 0);
    assert.deepEqual(table.writers, []);
    assert.deepEqual(table.readers, ['b:2']);
  });

  it('drops a failed member from every role, and a writer that is not one from writing only', () => {
    const table = parseRoutingTable(map({ rt: routingTable(['a:1', 'b:2', 'a:1']) }), null, 0);
    assert.deepEqual(withoutMember(table, 'a:1').routers, ['b:2']);
    assert.deepEqual(withoutMember(table, 'a:1').writers, []);
    const demoted = withoutWriter({ ...table, readers: ['a:1', 'b:2'] }, 'a:1');
    assert.deepEqual(demoted.writers, []);
    assert.deepEqual(demoted.readers, ['a:1', 'b:2']);
  });

  it('splits host:port, IPv6 in brackets', () => {
    assert.deepEqual(splitAddress('[::1]:7687'), { host: '::1', port: 7687 });
    assert.deepEqual(splitAddress('core-1.cluster:7687'), { host: 'core-1.cluster', port: 7687 });
    assert.equal(splitAddress('core-1.cluster'), null);
    assert.equal(splitAddress('core:99999'), null);
  });
});

describe('where a unit goes', () => {
  it('reads mode and db from BEGIN and from an auto-commit RUN, never from the query', () => {
    assert.deepEqual(unitRoute(frameOf(message(BoltSignature.BEGIN, map({ mode: 'r', db: 'movies' })))), {
      access: 'read',
      database: 'movies',
      impersonatedUser: null,
    });
    assert.deepEqual(unitRoute(frameOf(message(BoltSignature.BEGIN, map({})))), {
      access: 'write',
      database: null,
      impersonatedUser: null,
    });
    const run = message(BoltSignature.RUN, 'MATCH (n) RETURN n // mode: r', map({}), map({ mode: 'r' }));
    assert.deepEqual(unitRoute(frameOf(run)), { access: 'read', database: null, impersonatedUser: null });
    const write = message(BoltSignature.RUN, "RETURN 'mode r'", map({ mode: 'r' }), map({ db: 'neo4j' }));
    assert.deepEqual(unitRoute(frameOf(write)), { access: 'write', database: 'neo4j', impersonatedUser: null });
    assert.deepEqual(unitRoute(frameOf(message(BoltSignature.ROUTE, map({}), [], map({})))), {
      access: 'route',
      database: null,
      impersonatedUser: null,
    });
    const impersonating = message(BoltSignature.BEGIN, map({ imp_user: 'alice' }));
    assert.deepEqual(unitRoute(frameOf(impersonating)), { access: 'write', database: null, impersonatedUser: 'alice' });
  });
});
