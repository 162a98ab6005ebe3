/**
 * The census analysis on its own, no Neo4j: listings built by hand, including the ones a test server
 * does not produce on demand (a server restart, an Enterprise user who is not an admin, a listing
 * without the counter).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  analyseCensus,
  type CensusInput,
  type CensusMemory,
  type ListedConnection,
  type ListedTransaction,
} from '../../src/probe/census-analysis.ts';

const SETTINGS = { topClientHosts: 2, longTransactionSeconds: 30 };
const START = Date.parse('2026-12-01T00:00:00Z');
const SIDECAR_AGENT = 'neo4j-pool-sidecar/0.1.0';

function connection(id: number, overrides: Partial<ListedConnection> = {}): ListedConnection {
  return {
    connectionId: `bolt-${id}`,
    connector: 'bolt',
    username: 'neo4j',
    userAgent: 'neo4j-python/5.28.1 Python/3.11',
    clientAddress: '10.0.0.5:51234',
    connectedAtMs: START - 1000 * id,
    serverNowMs: START,
    ...overrides,
  };
}

function transaction(id: number, elapsedSeconds: number, database = 'neo4j'): ListedTransaction {
  return {
    transactionId: `${database}-transaction-${id}`,
    database,
    username: 'neo4j',
    connectionId: `bolt-${id}`,
    status: 'Running',
    elapsedMs: elapsedSeconds * 1000,
  };
}

function input(overrides: Partial<CensusInput>): CensusInput {
  return {
    at: START,
    who: { user: 'neo4j', visibility: 'all' },
    connections: [],
    transactions: [],
    counter: undefined,
    ownConnectionsOpened: 0,
    ...overrides,
  };
}

/** The sidecar's own pooled connection, open across censuses as it normally is. */
const ownPooled = connection(3, { userAgent: SIDECAR_AGENT, clientAddress: '127.0.0.1:40000' });

describe('census analysis', () => {
  it('groups open connections by connector, user-agent family and host, the top hosts by name and the rest as other', () => {
    const { report, pairs } = analyseCensus(
      input({
        counter: 20,
        connections: [
          ownPooled,
          connection(10, { clientAddress: '10.0.0.5:1' }),
          connection(11, { clientAddress: '10.0.0.5:2', userAgent: 'neo4j-javascript/6.3.0' }),
          connection(12, { clientAddress: '[fd00::7]:3' }),
          connection(13, { clientAddress: '10.0.0.9:4', connector: 'bolt-routing' }),
          // The counter's own connection, should the server still list it: not a client.
          connection(20, { userAgent: SIDECAR_AGENT, username: '' }),
        ],
        ownConnectionsOpened: 2,
      }),
      undefined,
      SETTINGS,
    );
    assert.equal(report.connections.total, 5);
    assert.deepEqual(report.connections.byConnector, { bolt: 4, 'bolt-routing': 1 });
    assert.deepEqual(report.connections.byUserAgentFamily, {
      'neo4j-pool-sidecar/0': 1,
      'neo4j-python/5': 3,
      'neo4j-javascript/6': 1,
    });
    assert.deepEqual(report.connections.byClientHost, [
      { host: '10.0.0.5', connections: 2 },
      { host: '10.0.0.9', connections: 1 },
      { host: 'other', connections: 2 },
    ]);
    assert.equal(pairs.get('bolt\u0000neo4j-python/5'), 2);
    assert.equal(pairs.get('bolt-routing\u0000neo4j-python/5'), 1);
    // Ages 3, 10, 11, 12, 13 s.
    assert.equal(report.age.medianSeconds, 11);
    assert.equal(report.age.maxSeconds, 13);
    assert.equal(report.age.atMost['1'], 0);
    assert.equal(report.age.atMost['10'], 2);
    assert.equal(report.age.atMost['+Inf'], 5);
  });

  it('counts nothing as opened on the first census and remembers the counter as the high-water mark', () => {
    const { report, memory } = analyseCensus(
      input({ counter: 20, connections: [ownPooled, connection(10)], ownConnectionsOpened: 2 }),
      undefined,
      SETTINGS,
    );
    assert.deepEqual(
      { ...report.opened },
      {
        sinceLastCensus: 0,
        stillOpen: 0,
        closedBeforeCensus: 0,
        intervalSeconds: undefined,
        perSecond: undefined,
        serverRestarted: false,
      },
    );
    assert.equal(memory.highWater, 20);
    assert.equal(memory.own, 2);
  });

  it('counts every id between two counters: still open, closed before the census, less the sidecar own', () => {
    const first = analyseCensus(
      input({ counter: 20, connections: [ownPooled, connection(10)], ownConnectionsOpened: 2 }),
      undefined,
      SETTINGS,
    );
    // Since: ids 21..40. The sidecar opened the counter's connection (40) and one pooled connection
    // (25, listed under its own agent); others opened 22 and 31 (still open) and 16 more that closed.
    const { report, openedByConnector, memory } = analyseCensus(
      input({
        at: START + 15_000,
        counter: 40,
        connections: [
          ownPooled,
          connection(10),
          connection(22),
          connection(25, { userAgent: SIDECAR_AGENT }),
          connection(31, { connector: 'bolt-routing' }),
        ],
        ownConnectionsOpened: 4,
      }),
      first.memory,
      SETTINGS,
    );
    assert.equal(report.opened.stillOpen, 2);
    assert.equal(report.opened.closedBeforeCensus, 16);
    assert.equal(report.opened.sinceLastCensus, 18);
    assert.equal(report.opened.intervalSeconds, 15);
    assert.equal(report.opened.perSecond, 18 / 15);
    assert.equal(report.opened.serverRestarted, false);
    assert.deepEqual(openedByConnector, { bolt: 1, 'bolt-routing': 1 });
    assert.equal(memory.highWater, 40);
  });

  it("counts new connections under the sidecar's agent beyond the ones it opened itself as other sidecars' (still open)", () => {
    const first = analyseCensus(input({ counter: 20, ownConnectionsOpened: 1 }), undefined, SETTINGS);
    // Since: ids 21..30. This instance opened the counter's connection (30) and one pooled connection
    // (21); three more under the same agent are the workers' sidecars' pools (22, 23, 24).
    const { report, openedByConnector } = analyseCensus(
      input({
        at: START + 15_000,
        counter: 30,
        connections: [21, 22, 23, 24].map((id) => connection(id, { userAgent: SIDECAR_AGENT })),
        ownConnectionsOpened: 3,
      }),
      first.memory,
      SETTINGS,
    );
    assert.equal(report.opened.stillOpen, 3);
    assert.equal(report.opened.closedBeforeCensus, 5);
    assert.deepEqual(openedByConnector, { bolt: 3 });
  });

  it('takes a connection opened during the listing, newer than the counter, as the high-water mark', () => {
    const first = analyseCensus(input({ counter: 20, ownConnectionsOpened: 1 }), undefined, SETTINGS);
    const { report, memory } = analyseCensus(
      input({ at: START + 15_000, counter: 30, connections: [connection(32)], ownConnectionsOpened: 2 }),
      first.memory,
      SETTINGS,
    );
    // Ids 21..32: the counter's own (30), one still open (32), ten closed.
    assert.equal(report.opened.stillOpen, 1);
    assert.equal(report.opened.closedBeforeCensus, 10);
    assert.equal(memory.highWater, 32);
  });

  it('after a server restart counts from id 0 again instead of reporting nothing (counter below the high-water mark)', () => {
    const before = analyseCensus(
      input({ counter: 500, connections: [ownPooled, connection(480)], ownConnectionsOpened: 3 }),
      undefined,
      SETTINGS,
    );
    // A new server: the sidecar's pool reconnected (id 1), a client opened 2 (still open), the counter is 6.
    const { report, memory } = analyseCensus(
      input({
        at: START + 15_000,
        counter: 6,
        connections: [
          connection(1, { userAgent: SIDECAR_AGENT, connectedAtMs: START + 10_000, serverNowMs: START + 15_000 }),
          connection(2, { connectedAtMs: START + 11_000, serverNowMs: START + 15_000 }),
        ],
        ownConnectionsOpened: 5,
      }),
      before.memory,
      SETTINGS,
    );
    assert.equal(report.opened.serverRestarted, true);
    // Ids 0..6 are 7 connections: 2 the sidecar's (pool, counter), 1 still open, 4 closed.
    assert.equal(report.opened.stillOpen, 1);
    assert.equal(report.opened.closedBeforeCensus, 4);
    assert.equal(memory.highWater, 6, 'the new server sets the mark, not the old one');
  });

  it('without the counter, a lower newest id is a restart only when no connection open last time survives', () => {
    const before = analyseCensus(
      input({ connections: [ownPooled, connection(480)], ownConnectionsOpened: 1 }),
      undefined,
      SETTINGS,
    );
    assert.equal(before.memory.highWater, 480);

    // The newest connection closed, the sidecar's pooled one survives: the same server.
    const closedOnly = analyseCensus(
      input({ at: START + 15_000, connections: [ownPooled], ownConnectionsOpened: 1 }),
      before.memory,
      SETTINGS,
    );
    assert.equal(closedOnly.report.opened.serverRestarted, false);
    assert.equal(closedOnly.memory.highWater, 480);
    assert.equal(closedOnly.report.opened.sinceLastCensus, 0);

    // Nothing survives and the ids are lower: a new server.
    const restarted = analyseCensus(
      input({
        at: START + 15_000,
        connections: [connection(4, { connectedAtMs: START + 9_000, serverNowMs: START + 15_000 })],
        ownConnectionsOpened: 2,
      }),
      before.memory,
      SETTINGS,
    );
    assert.equal(restarted.report.opened.serverRestarted, true);
    assert.equal(restarted.memory.highWater, 4);
    // Ids 0..4: one the sidecar's pool, the listed one still open, three closed.
    assert.equal(restarted.report.opened.stillOpen, 1);
    assert.equal(restarted.report.opened.closedBeforeCensus, 3);
  });

  it('is not fooled into a restart by a quiet server whose old connections all closed (the counter is higher)', () => {
    const before = analyseCensus(
      input({ counter: 100, connections: [connection(90)], ownConnectionsOpened: 1 }),
      undefined,
      SETTINGS,
    );
    const { report } = analyseCensus(
      input({ at: START + 15_000, counter: 101, connections: [], ownConnectionsOpened: 2 }),
      before.memory,
      SETTINGS,
    );
    assert.equal(report.opened.serverRestarted, false);
    assert.equal(report.opened.sinceLastCensus, 0, 'the only new id is the counter, which is the sidecar own');
  });

  it('lists the long-running transactions oldest first, at most ten, and the oldest per database', () => {
    const transactions = [
      transaction(1, 5),
      ...Array.from({ length: 11 }, (_, index) => transaction(10 + index, 31 + index)),
      transaction(40, 600, 'system'),
    ];
    const { report, transactionsByDatabase } = analyseCensus(input({ transactions }), undefined, SETTINGS);
    assert.equal(report.transactions.open, 13);
    assert.equal(report.transactions.longRunning, 12);
    assert.equal(report.transactions.oldestSeconds, 600);
    assert.equal(report.transactions.longest.length, 10);
    assert.deepEqual(
      report.transactions.longest.slice(0, 2).map((tx) => [tx.database, tx.elapsedSeconds]),
      [
        ['system', 600],
        ['neo4j', 41],
      ],
    );
    assert.deepEqual(transactionsByDatabase.get('neo4j'), { long: 11, oldest: 41 });
    assert.deepEqual(transactionsByDatabase.get('system'), { long: 1, oldest: 600 });
  });

  it('says what the census cannot see: a non-admin user, or an unknown user whose connections are the only ones listed', () => {
    const notAdmin = analyseCensus(
      input({ who: { user: 'jobs', visibility: 'own-user-only' } }),
      undefined,
      SETTINGS,
    ).report;
    assert.equal(notAdmin.visibility, 'own-user-only');
    assert.match(notAdmin.visibilityNote ?? '', /user jobs is not an admin/);

    const unknown = analyseCensus(
      input({
        who: { user: undefined, visibility: 'unknown' },
        connections: [connection(1, { username: 'jobs' }), connection(2, { username: 'jobs' })],
      }),
      undefined,
      SETTINGS,
    ).report;
    assert.equal(unknown.visibility, 'unknown');
    assert.match(unknown.visibilityNote ?? '', /every connection listed belongs to jobs/);

    assert.equal(analyseCensus(input({}), undefined, SETTINGS).report.visibilityNote, undefined);
  });

  it('is pure: the same input and memory give the same analysis, and the memory passed in is not changed', () => {
    const memory: CensusMemory = { highWater: 20, open: new Set(['3@1']), own: 2, at: START - 15_000 };
    const frozen = JSON.stringify({ ...memory, open: [...memory.open] });
    const same = input({ counter: 30, connections: [connection(25)], ownConnectionsOpened: 3 });
    const first = analyseCensus(same, memory, SETTINGS);
    const second = analyseCensus(same, memory, SETTINGS);
    assert.deepEqual(first.report, second.report);
    assert.equal(JSON.stringify({ ...memory, open: [...memory.open] }), frozen);
  });
});
