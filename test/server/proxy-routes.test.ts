/**
 * The proxy's maintenance routes as HTTP: what each answers when the proxy or its pool is off, how the
 * drain timeout reaches pause, and that every answer keeps to the documented schema (fastify drops a
 * field the schema lacks, so a field the proxy adds without a schema would vanish silently: checked
 * here field by field). The proxy is a recording stand-in: what the verbs do to a real pool is tested
 * against Neo4j in test/proxy/maintenance.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { PrometheusSink } from '../../src/metrics/prometheus.ts';
import {
  type ClientsView,
  countByState,
  type PauseReport,
  type PoolingMode,
  type PoolsView,
  type ProxyMaintenance,
} from '../../src/proxy/index.ts';
import { createHttpServer } from '../../src/server/http.ts';

function standIn(mode: PoolingMode, calls: string[]): ProxyMaintenance {
  const clients = countByState(['in_unit', 'idle', 'idle', 'held']);
  const pause: PauseReport = {
    drained: false,
    paused: true,
    pausedSince: '2026-12-07T17:00:00.000Z',
    maxPauseSeconds: 300,
    waitedSeconds: 2,
    running: { clients, unitsInFlight: 1, queriesInFlight: 1, upstreamsLent: 1 },
  };
  const pools: PoolsView = {
    mode: 'transaction',
    paused: true,
    pausedSince: '2026-12-07T17:00:00.000Z',
    pausedSeconds: 2.5,
    maxPauseSeconds: 300,
    neo4jReachable: true,
    maxUpstreams: 100,
    upstreams: { idle: 1, in_use: 1, opening: 0, resetting: 0 },
    waiting: 0,
    held: 1,
    lent: 1,
    keys: [{ key: '3f2a9c1b', bolt: '5.8', upstreams: { idle: 1, in_use: 1, opening: 0, resetting: 0 } }],
    members: [
      {
        address: 'core-1.cluster:7687',
        roles: ['writer', 'router'],
        reachable: true,
        upstreams: { idle: 2, in_use: 1, opening: 0, resetting: 0 },
        lent: 1,
      },
      {
        address: 'core-2.cluster:7687',
        roles: [],
        reachable: false,
        upstreams: { idle: 0, in_use: 0, opening: 1, resetting: 0 },
        lent: 0,
      },
    ],
  };
  const clientsView: ClientsView = {
    mode,
    total: 4,
    byState: clients,
    clients: [
      { id: 7, remote: '10.0.0.7:51234', userAgent: 'neo4j-python', state: 'held', stateSeconds: 1.5, queries: 3 },
    ],
  };
  return {
    poolingMode: mode,
    async pause(options) {
      calls.push(`pause ${options.drainTimeoutMs}`);
      return pause;
    },
    resume() {
      calls.push('resume');
      return { wasPaused: true, pausedSeconds: 2.5, released: 1 };
    },
    reconnect() {
      calls.push('reconnect');
      return { upstreams: 2 };
    },
    pools: () => pools,
    clients: () => clientsView,
  };
}

function server(proxy: (() => ProxyMaintenance | undefined) | undefined): FastifyInstance {
  return createHttpServer({
    prometheus: new PrometheusSink(),
    readiness: async () => ({ ready: true }),
    status: () => ({}),
    ...(proxy ? { proxy } : {}),
  });
}

describe('the /proxy routes', () => {
  const calls: string[] = [];
  let app: FastifyInstance;
  let proxy: ProxyMaintenance | undefined;
  before(async () => {
    app = server(() => proxy);
    await app.ready();
  });
  after(() => app.close());

  it('pause takes the drain timeout in seconds (30 by default) and answers the whole report', async () => {
    proxy = standIn('transaction', calls);
    calls.length = 0;
    const byDefault = await app.inject({ method: 'POST', url: '/proxy/pause' });
    assert.equal(byDefault.statusCode, 200, byDefault.body);
    const chosen = await app.inject({ method: 'POST', url: '/proxy/pause?drainTimeoutSeconds=5' });
    assert.equal(chosen.statusCode, 200);
    assert.deepEqual(calls, ['pause 30000', 'pause 5000']);
    assert.deepEqual(chosen.json(), await proxy.pause({ drainTimeoutMs: 0 }));
  });

  it('refuses a drain timeout that is not a whole number of seconds from 0 to 600', async () => {
    proxy = standIn('transaction', calls);
    for (const value of ['-1', '601', 'soon', '1.5']) {
      const response = await app.inject({ method: 'POST', url: `/proxy/pause?drainTimeoutSeconds=${value}` });
      assert.equal(response.statusCode, 400, value);
      assert.match(response.json<{ message: string }>().message, /drainTimeoutSeconds/);
    }
  });

  it('resume, reconnect, pools and clients answer the views whole', async () => {
    proxy = standIn('session', calls);
    const resume = await app.inject({ method: 'POST', url: '/proxy/resume' });
    assert.deepEqual(resume.json(), proxy.resume());
    const reconnect = await app.inject({ method: 'POST', url: '/proxy/reconnect' });
    assert.deepEqual(reconnect.json(), proxy.reconnect());
    const pools = await app.inject({ method: 'GET', url: '/proxy/pools' });
    assert.deepEqual(pools.json(), proxy.pools());
    const clients = await app.inject({ method: 'GET', url: '/proxy/clients' });
    assert.deepEqual(clients.json(), proxy.clients());
  });

  it('answers 404 with the reason when the pool is off, except for clients', async () => {
    proxy = standIn('off', calls);
    for (const [method, url] of [
      ['POST', '/proxy/pause'],
      ['POST', '/proxy/resume'],
      ['POST', '/proxy/reconnect'],
      ['GET', '/proxy/pools'],
    ] as const) {
      const response = await app.inject({ method, url });
      assert.equal(response.statusCode, 404, url);
      assert.match(response.json<{ message: string }>().message, /proxy\.pooling\.mode: off/, url);
    }
    assert.equal((await app.inject({ method: 'GET', url: '/proxy/clients' })).statusCode, 200);
  });

  it('answers 404 with the reason when the proxy is not running', async () => {
    proxy = undefined;
    for (const [method, url] of [
      ['POST', '/proxy/pause'],
      ['GET', '/proxy/clients'],
    ] as const) {
      const response = await app.inject({ method, url });
      assert.equal(response.statusCode, 404, url);
      assert.match(response.json<{ message: string }>().message, /proxy\.enabled: false/, url);
    }
  });

  it('keeps the verbs to loopback without a token', async () => {
    proxy = standIn('transaction', calls);
    const response = await app.inject({ method: 'POST', url: '/proxy/resume', remoteAddress: '10.0.0.9' });
    assert.equal(response.statusCode, 403);
    const view = await app.inject({ method: 'GET', url: '/proxy/clients', remoteAddress: '10.0.0.9' });
    assert.equal(view.statusCode, 200);
  });
});
