/**
 * The pool's maintenance primitives and its hold through an outage, on the fake clock and Neo4j
 * (fakes.ts): pause holds checkouts in arrival order and resume releases them within maxUpstreams; the
 * maximum pause resumes by itself; whenDrained waits for every lent upstream; reconnect closes each
 * upstream at its next return; a refused, silent or starting Neo4j holds checkouts, retried by the pool
 * alone with capped backoff, and holdTimeoutMs ends every hold.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  HoldCancelledError,
  HoldTimeoutError,
  RETRY_FIRST_DELAY_MS,
  RETRY_MAX_DELAY_MS,
} from '../../../src/proxy/pool/pool.ts';
import { UpstreamClosedError } from '../../../src/proxy/pool/pooled-upstream.ts';
import { type FakeUpstream, fakePool, lentTo, logon, release, settle, TEST_SETTINGS } from './fakes.ts';

const TEST_CONNECT_TIMEOUT_MS = TEST_SETTINGS.connectTimeoutMs;

const HOLDING = { holdTimeoutMs: 25_000, maxPauseMs: 120_000 };

describe('pause and resume', () => {
  it('holds every checkout in arrival order and releases them in that order within maxUpstreams', async () => {
    const fake = fakePool({ ...HOLDING, maxUpstreams: 2 });
    const before = await lentTo(fake);
    fake.pool.pause();
    const clients = [logon(fake, 'k1'), logon(fake, 'k1'), logon(fake, 'k1')];
    await fake.clock.advance(1000);
    assert.ok(
      clients.every((client) => client.pending),
      'held, though a slot is free',
    );
    assert.deepEqual(
      { ...fake.pool.maintenance, pausedSinceMs: null },
      {
        paused: true,
        pausedSinceMs: null,
        pausedForMs: 1000,
        held: 3,
        heldBy: { outage: 0, paused: 3, no_writer: 0 },
        lent: 1,
        neo4jReachable: true,
        generation: 0,
      },
    );
    assert.equal(fake.server.opened.length, 1, 'nothing opened while paused');
    fake.pool.resume();
    await settle();
    assert.deepEqual(
      clients.map((client) => client.pending),
      [false, true, true],
      'the first held takes the free slot; the others wait for maxUpstreams',
    );
    await release(fake, before);
    assert.deepEqual(
      clients.map((client) => client.pending),
      [false, false, true],
      'the second in arrival order is served next',
    );
    assert.equal(fake.pool.maintenance.held, 0);
    assert.deepEqual(
      fake.observer.holds.map((hold) => [hold.reason, hold.outcome, hold.seconds]),
      [
        ['paused', 'released', 1],
        ['paused', 'released', 1],
        ['paused', 'released', 1],
      ],
    );
  });

  it('a pause left on ends by itself at maxPauseMs, counted', async () => {
    const fake = fakePool({ ...HOLDING, maxPauseMs: 60_000, holdTimeoutMs: 90_000 });
    fake.pool.pause();
    const held = logon(fake, 'k1');
    await fake.clock.advance(59_999);
    assert.ok(held.pending && fake.pool.maintenance.paused);
    await fake.clock.advance(1);
    assert.ok(!held.pending, 'released');
    assert.equal(fake.pool.maintenance.paused, false);
    assert.equal(fake.observer.pausesExpired, 1);
  });

  it('holdTimeoutMs ends a hold with HoldTimeoutError; a client that leaves ends its hold at once', async () => {
    const fake = fakePool({ ...HOLDING, holdTimeoutMs: 10_000 });
    fake.pool.pause();
    let leave: (() => void) | null = null;
    const leaving = logon(fake, 'k1', 'alice', 'right', { onHold: (cancel) => (leave = cancel) });
    const staying = logon(fake, 'k1');
    await fake.clock.advance(2000);
    assert.ok(leave !== null, 'the checkout told its client how to leave');
    (leave as () => void)();
    await settle();
    assert.ok(leaving.error instanceof HoldCancelledError);
    assert.equal(fake.pool.maintenance.held, 1);
    await fake.clock.advance(7999);
    assert.ok(staying.pending);
    await fake.clock.advance(1);
    assert.ok(staying.error instanceof HoldTimeoutError && staying.error.reason === 'paused');
    assert.deepEqual(
      fake.observer.holds.map((hold) => [hold.outcome, hold.seconds]),
      [
        ['client_left', 2],
        ['timed_out', 10],
      ],
    );
  });

  it('close() ends every hold (shutdown)', async () => {
    const fake = fakePool(HOLDING);
    fake.pool.pause();
    const held = logon(fake, 'k1');
    await settle();
    fake.pool.close();
    await settle();
    assert.ok(held.error instanceof UpstreamClosedError);
    assert.deepEqual(
      fake.observer.holds.map((hold) => hold.outcome),
      ['shutdown'],
    );
  });
});

describe('whenDrained', () => {
  it('true once every lent upstream is returned; false at its timeout while one stays lent', async () => {
    const fake = fakePool(HOLDING);
    const a = await lentTo(fake);
    const b = await lentTo(fake);
    fake.pool.pause();
    let drained: boolean | null = null;
    void fake.pool.whenDrained(5000).then((result) => (drained = result));
    await release(fake, a);
    assert.equal(drained, null, 'one still lent');
    await release(fake, b);
    assert.equal(drained, true);
    fake.pool.resume();

    const stillLent = await lentTo(fake);
    let timedOut: boolean | null = null;
    void fake.pool.whenDrained(5000).then((result) => (timedOut = result));
    await fake.clock.advance(4999);
    assert.equal(timedOut, null);
    await fake.clock.advance(1);
    assert.equal(timedOut, false);
    assert.equal(fake.pool.maintenance.lent, 1);
    await release(fake, stillLent);
    assert.equal(await fake.pool.whenDrained(1), true);
  });
});

describe('reconnect', () => {
  it('closes idle upstreams at once and lent ones at their return; new ones are opened fresh', async () => {
    const fake = fakePool(HOLDING);
    const lent = await lentTo(fake);
    const idle = await lentTo(fake);
    await release(fake, idle);
    fake.pool.reconnect();
    await settle();
    assert.equal(idle.state, 'gone');
    assert.equal(lent.state, 'borrowed', 'a lent one is left to its client');
    await release(fake, lent);
    assert.equal(lent.state, 'gone');
    assert.equal(fake.observer.closed('reconnect'), 2);
    const fresh = await lentTo(fake);
    assert.ok(fresh !== lent && fresh !== idle);
    await release(fake, fresh);
    assert.equal(fresh.state, 'idle', 'one opened after reconnect is kept');
    assert.equal(fake.pool.maintenance.generation, 1);
  });
});

describe('hold through an outage', () => {
  it('a refused open marks Neo4j unreachable; checkouts are held; one retry at a time with backoff to 2 s', async () => {
    const fake = fakePool({ ...HOLDING, maxUpstreams: 2 });
    fake.server.refusing = true;
    const clients = [logon(fake, 'k1')];
    await settle();
    clients.push(logon(fake, 'k1'), logon(fake, 'k1'), logon(fake, 'k1'));
    await settle();
    assert.ok(clients.every((client) => client.pending));
    assert.equal(fake.pool.maintenance.neo4jReachable, false);
    assert.equal(fake.pool.maintenance.heldBy.outage, 4);
    // The first client's open failed; the others were held without trying.
    assert.equal(fake.server.opened.length, 1);
    // Retries at 100, 300, 700, 1500, 3100, 5100, 7100 ms: 100 ms doubling, capped at 2 s.
    let elapsed = 0;
    const attemptsAt: number[] = [];
    for (let delay = RETRY_FIRST_DELAY_MS; elapsed + delay <= 7100; delay = Math.min(delay * 2, RETRY_MAX_DELAY_MS)) {
      elapsed += delay;
      attemptsAt.push(elapsed);
    }
    assert.deepEqual(attemptsAt, [100, 300, 700, 1500, 3100, 5100, 7100]);
    await fake.clock.advance(7100);
    assert.equal(fake.server.opened.length, 1 + attemptsAt.length, 'one attempt per backoff step, not one per client');
    fake.server.refusing = false;
    await fake.clock.advance(2000);
    assert.equal(fake.pool.maintenance.neo4jReachable, true);
    assert.deepEqual(
      clients.map((client) => client.pending),
      [false, false, true, true],
      'released in arrival order, within maxUpstreams',
    );
    assert.equal(fake.pool.maintenance.held, 0, 'the rest wait for a slot, no longer held');
    const retried = fake.server.opened.at(-1 - 1);
    assert.equal(clients[0]?.upstream, retried, 'the first released took the retry’s upstream, LOGON alone on it');
    assert.equal(fake.server.opened.length, 1 + attemptsAt.length + 2, 'the retry and one more for the second');
    assert.deepEqual(
      fake.observer.holds.map((hold) => hold.outcome),
      ['released', 'released', 'released', 'released'],
    );
  });

  it('an unanswered open (frozen Neo4j) holds too, and holdTimeoutMs fails the client with HoldTimeoutError', async () => {
    const fake = fakePool({ ...HOLDING, holdTimeoutMs: 10_000 });
    fake.server.answering = false;
    const client = logon(fake, 'k1');
    await fake.clock.advance(1000);
    assert.equal(fake.observer.closed('no_answer'), 1, 'the open missed its deadline');
    assert.equal(fake.pool.maintenance.neo4jReachable, false);
    await fake.clock.advance(9999);
    assert.ok(client.pending, 'held until its bound, counted from the hold');
    await fake.clock.advance(1);
    assert.ok(client.error instanceof HoldTimeoutError && client.error.reason === 'outage');
    const live = fake.server.live.filter((upstream) => upstream.state !== 'gone').length;
    assert.ok(live <= 1, `at most the one retry in flight, not one per client (${live})`);
  });

  it('DatabaseUnavailable on LOGON while Neo4j starts is never relayed: the client is held and gets in later', async () => {
    const fake = fakePool(HOLDING);
    fake.server.unavailableOn = 'logon';
    const client = logon(fake, 'k1');
    await settle();
    assert.ok(client.pending);
    assert.equal(fake.observer.closed('database_unavailable'), 1);
    assert.equal(fake.pool.maintenance.neo4jReachable, false);
    assert.equal(fake.observer.logins.length, 0, 'not counted as a refused login');
    fake.server.unavailableOn = null;
    await fake.clock.advance(RETRY_FIRST_DELAY_MS);
    assert.ok(!client.pending);
    assert.equal(client.outcome !== null && 'result' in client.outcome, true, 'lent');
  });

  it('a Neo4j that keeps answering LOGON with DatabaseUnavailable ends the checkout at holdTimeoutMs, never relayed', async () => {
    const fake = fakePool({ ...HOLDING, holdTimeoutMs: 10_000 });
    fake.server.unavailableOn = 'logon';
    const client = logon(fake, 'k1');
    await fake.clock.advance(9_999);
    assert.ok(client.pending, 'held and released into a starting Neo4j, again and again');
    assert.ok(fake.observer.closed('database_unavailable') > 2, 'its LOGON was tried again after each release');
    await fake.clock.advance(1 + TEST_CONNECT_TIMEOUT_MS);
    assert.ok(client.error instanceof HoldTimeoutError, `ended by its bound: ${String(client.error)}`);
    assert.equal(fake.observer.logins.length, 0, 'no refusal relayed or counted');
  });

  it('with holdTimeoutMs 0 a refused open fails the checkout at once, as before', async () => {
    const fake = fakePool({ holdTimeoutMs: 0 });
    fake.server.refusing = true;
    const client = logon(fake, 'k1');
    await settle();
    assert.ok(client.error instanceof UpstreamClosedError);
  });

  it('an upstream lent when Neo4j went away is not the pool’s to replay: its close is the client’s', async () => {
    const fake = fakePool(HOLDING);
    const lent: FakeUpstream = await lentTo(fake);
    fake.server.refusing = true;
    lent.closeFromServer();
    await settle();
    assert.equal(fake.pool.maintenance.lent, 0);
    assert.equal(fake.pool.maintenance.neo4jReachable, true, 'a lost lent upstream alone says nothing of reachability');
    const next = logon(fake, 'k1');
    await settle();
    assert.ok(next.pending && fake.pool.maintenance.heldBy.outage === 1, 'the next checkout finds out, and is held');
  });
});
