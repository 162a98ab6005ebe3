/**
 * `top`'s screen drawn from endpoint answers (renderTop is a pure function of them), and the queries
 * over an interval as the difference of two /queries reads. The live command against a real sidecar
 * is tested in test/admin/commands.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { queriesOverInterval, renderTop, type TopReading } from '../../src/admin/index.ts';
import { countByState, type PoolsView } from '../../src/proxy/index.ts';
import type { QueryStatsRow, QueryStatsSnapshot } from '../../src/querystats/index.ts';

function row(id: string, calls: number, totalSeconds: number, query = `MATCH (n:${id}) RETURN n`): QueryStatsRow {
  return {
    id,
    query,
    database: 'neo4j',
    mode: 'read',
    calls,
    errors: 0,
    errorsByCode: {},
    totalSeconds,
    meanSeconds: calls === 0 ? 0 : totalSeconds / calls,
    maxSeconds: 0,
    p50Seconds: 0,
    p95Seconds: 0,
    p99Seconds: 0,
    records: 0,
    clients: {},
    attribution: {},
    firstSeen: '2026-12-07T17:00:00.000Z',
    lastSeen: '2026-12-07T17:00:00.000Z',
    rankErrorSeconds: 0,
  };
}

function snapshot(rows: QueryStatsRow[], since = '2026-12-07T17:00:00.000Z'): QueryStatsSnapshot {
  return {
    since,
    entries: rows.length,
    maxFingerprints: 1000,
    totalCalls: rows.reduce((sum, r) => sum + r.calls, 0),
    totalSeconds: rows.reduce((sum, r) => sum + r.totalSeconds, 0),
    queries: rows,
  };
}

const pools: PoolsView = {
  mode: 'transaction',
  paused: true,
  pausedSince: '2026-12-07T17:00:00.000Z',
  pausedSeconds: 75,
  maxPauseSeconds: 300,
  neo4jReachable: true,
  maxUpstreams: 100,
  upstreams: { idle: 3, in_use: 2, opening: 0, resetting: 1 },
  waiting: 0,
  held: 4,
  lent: 2,
  keys: [{ key: '3f2a9c1b', bolt: '5.8', upstreams: { idle: 3, in_use: 2, opening: 0, resetting: 1 } }],
};

function reading(overrides: Partial<TopReading> = {}): TopReading {
  return {
    url: 'http://127.0.0.1:9464',
    atMs: Date.parse('2026-12-07T17:01:15Z'),
    status: {
      version: '0.1.0',
      uptimeSeconds: 3725,
      proxy: { listen: '127.0.0.1:7687', upstream: 'bolt://neo4j:7687' },
      alerts: {
        active: [
          {
            alert: 'Neo4jPoolProxyPausedTooLong',
            severity: 'warning',
            labels: { pool: 'proxy', severity: 'warning' },
            firingSince: '2026-12-07T17:01:00.000Z',
          },
        ],
      },
    },
    pools,
    clients: {
      mode: 'transaction',
      total: 3,
      byState: countByState(['idle', 'held', 'in_unit']),
      clients: [
        { id: 1, remote: '10.0.0.1:5000', userAgent: 'neo4j-python', state: 'idle', stateSeconds: 100, queries: 9 },
        { id: 2, remote: '10.0.0.2:5000', userAgent: 'neo4j-javascript', state: 'held', stateSeconds: 3, queries: 1 },
        { id: 3, remote: '10.0.0.3:5000', userAgent: 'neo4j-go', state: 'in_unit', stateSeconds: 0.5, queries: 4 },
      ],
    },
    queries: snapshot([row('aaaa', 10, 2), row('bbbb', 5, 1)]),
    ...overrides,
  };
}

describe('queries over an interval', () => {
  it('ranks by the time each query took between the two reads, leaving out those that did not run', () => {
    const before = snapshot([row('aaaa', 10, 2), row('bbbb', 5, 1), row('cccc', 1, 9)]);
    const after = snapshot([row('aaaa', 12, 2.5), row('bbbb', 9, 3), row('cccc', 1, 9), row('dddd', 1, 0.2)]);
    const rows = queriesOverInterval(before, after);
    assert.deepEqual(
      rows.map((r) => [r.id, r.calls, Number(r.seconds.toFixed(3))]),
      [
        ['bbbb', 4, 2],
        ['aaaa', 2, 0.5],
        ['dddd', 1, 0.2],
      ],
    );
  });

  it('takes the figures whole after a reset, and without an earlier read', () => {
    const before = snapshot([row('aaaa', 10, 2)]);
    const after = snapshot([row('aaaa', 3, 0.3)], '2026-12-07T17:05:00.000Z');
    assert.deepEqual(
      queriesOverInterval(before, after).map((r) => [r.id, r.calls]),
      [['aaaa', 3]],
    );
    assert.equal(queriesOverInterval(undefined, after).length, 1);
  });
});

describe('the top screen', () => {
  it('shows the pause, upstreams, clients by state with held ones first, the interval and firing alerts', () => {
    const previous = reading({ atMs: Date.parse('2026-12-07T17:01:14Z'), queries: snapshot([row('aaaa', 8, 1.5)]) });
    const screen = renderTop(reading(), previous);
    assert.match(screen, /neo4j-pool-sidecar 0\.1\.0 at http:\/\/127\.0\.0\.1:9464 {2}up 1h02m/);
    assert.match(screen, /transaction mode {2}PAUSED for 1m15s \(released by itself after 5m00s\)/);
    assert.match(screen, /upstreams {2}idle 3 {2}in_use 2 {2}opening 0 {2}resetting 1 {2}\(lent 2, max 100\)/);
    assert.match(screen, /waiting 0 {2}held 4/);
    assert.match(screen, /3 connected: login 0 {2}in_unit 1 {2}idle 1 {2}waiting 0 {2}held 1 {2}closing 0/);
    const clientLines = screen.split('\n').filter((line) => /^\s+\d+\s+10\.0\.0\./.test(line));
    assert.deepEqual(
      clientLines.map((line) => line.trim().split(/\s+/)[3]),
      ['held', 'idle', 'in_unit'],
    );
    assert.match(screen, /3f2a9c1b\s+5\.8\s+3\s+2\s+0\s+1/);
    assert.match(screen, /top queries by time over the last 1\.0 s/);
    // aaaa grew by 2 calls and 500 ms, bbbb is new since the previous read.
    assert.match(screen, /bbbb\s+neo4j\s+5\s+1000/);
    assert.match(screen, /aaaa\s+neo4j\s+2\s+500/);
    assert.match(
      screen,
      /alerts firing: 1\n {2}WARNING Neo4jPoolProxyPausedTooLong \{pool=proxy\} since 2026-12-07T17:01:00/,
    );
    assert.ok(!screen.includes('\x1b'), 'renderTop draws plain text; the command adds the clear');
  });

  it('says why a part is missing instead of leaving it blank', () => {
    const screen = renderTop(
      reading({
        status: { version: '0.1.0', uptimeSeconds: 5 },
        pools: 'the Bolt proxy is not running (proxy.enabled: false)',
        clients: 'the Bolt proxy is not running (proxy.enabled: false)',
        queries: 'query statistics are disabled (queryStats.enabled: false)',
      }),
    );
    assert.match(screen, /proxy: off/);
    assert.match(screen, /pool: the Bolt proxy is not running/);
    assert.match(screen, /\(query statistics are disabled/);
    assert.match(screen, /alerts firing: the alerts component is off/);
    assert.match(screen, /top queries \(since start\)/);
  });

  it('says so when nothing ran and nothing fires', () => {
    const quiet = reading({ status: { version: '0.1.0', uptimeSeconds: 5, alerts: { active: [] } } });
    const screen = renderTop(quiet, quiet);
    assert.match(screen, /\(no queries in this interval\)/);
    assert.match(screen, /alerts firing: none/);
  });
});
