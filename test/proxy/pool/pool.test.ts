/**
 * UpstreamPool on its own, with a fake clock, random source and Neo4j (fakes.ts): the wait queue, the
 * limits, eviction, idle timeout, minIdle, lifetimes, the liveness check, the login cache, and the
 * deadline every step on Neo4j's side runs under. Exact times, since the clock only moves when told.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BoltSignature } from '../../../src/proxy/bolt/index.ts';
import { LIFETIME_SPREAD, PoolTimeoutError } from '../../../src/proxy/pool/pool.ts';
import { UpstreamClosedError } from '../../../src/proxy/pool/pooled-upstream.ts';
import {
  type FakePool,
  type FakeUpstream,
  fakePool,
  lentTo,
  logon,
  logonOf,
  playedBack,
  release,
  settle,
  specOf,
} from './fakes.ts';

interface HelloClient {
  readonly pending: boolean;
  /** The upstream opened for it; null when it got a reply another client recorded. */
  readonly upstream: FakeUpstream | null;
}

/** A Bolt 5.1+ client's HELLO with no reply recorded for its key yet, as the proxy's login sends it; not awaited. */
function helloOf({ pool }: FakePool, key: string): HelloClient {
  const state: { pending: boolean; upstream: FakeUpstream | null } = { pending: true, upstream: null };
  void pool.openWithHello(specOf(key)).then(({ upstream }) => {
    state.pending = false;
    state.upstream = upstream;
  });
  return state;
}

describe('wait queue', () => {
  it('waiters are served in the order they came; one waits acquireTimeoutMs and no longer', async () => {
    const fake = fakePool({ maxUpstreams: 1, acquireTimeoutMs: 5000 });
    const first = await lentTo(fake);
    const second = logon(fake, 'k1');
    await fake.clock.advance(10);
    const third = logon(fake, 'k1');
    await settle();
    assert.equal(fake.pool.counts().waiting, 2);
    await release(fake, first);
    assert.ok(!second.pending && third.pending, 'the first to wait is served first');
    assert.equal(second.upstream, first, 'on the upstream returned');
    // It came at 10 ms: it times out at 5010 ms.
    await fake.clock.advance(4999);
    assert.ok(third.pending, 'still waiting 1 ms before its acquireTimeoutMs');
    await fake.clock.advance(1);
    assert.ok(third.error instanceof PoolTimeoutError, 'timed out');
    assert.equal(fake.pool.counts().waiting, 0);
    assert.equal(fake.observer.checkouts.filter((result) => result === 'timed_out').length, 1);
  });

  it('a waiter woken by a change it cannot use keeps its place ahead of later ones of its key', async () => {
    const fake = fakePool({ maxUpstreams: 3, maxUpstreamsPerKey: 2 });
    const k1 = [await lentTo(fake, 'k1'), await lentTo(fake, 'k1')];
    const k2 = await lentTo(fake, 'k2');
    const early = logon(fake, 'k1');
    await settle();
    const late = logon(fake, 'k1');
    await settle();
    // A k2 slot frees: no k1 waiter may open (k1 is at its limit), and neither loses its place.
    k2.closeFromServer();
    await settle();
    assert.ok(early.pending && late.pending, 'both still wait');
    await release(fake, k1[0] as FakeUpstream);
    assert.ok(!early.pending, 'the earlier waiter got the returned upstream');
    assert.ok(late.pending, 'the later one still waits');
  });

  it('a freed slot goes to a waiter that can use it, not only to the first in line', async () => {
    const fake = fakePool({ maxUpstreams: 3, maxUpstreamsPerKey: 2 });
    await lentTo(fake, 'k1');
    await lentTo(fake, 'k1');
    const k2 = await lentTo(fake, 'k2');
    const k1Waiter = logon(fake, 'k1');
    await settle();
    const k3Waiter = logon(fake, 'k3');
    await settle();
    k2.closeFromServer();
    await settle();
    assert.ok(!k3Waiter.pending, 'the k3 client opened in the freed slot');
    assert.equal(k3Waiter.outcome !== null && 'result' in k3Waiter.outcome ? k3Waiter.outcome.result : null, 'opened');
    assert.ok(k1Waiter.pending, 'k1 is still at its limit');
  });
  for (const freed of ['returned', 'closed'] as const) {
    it(`a waiter whose HELLO wait ends on a reply another recorded passes the wake-up on (first upstream ${freed})`, async () => {
      const fake = fakePool({ maxUpstreams: 1, acquireTimeoutMs: 30_000 });
      // Three Bolt 5.1+ clients of one key say HELLO before any reply is recorded: the first opens the only upstream.
      const hellos = [0, 1, 2].map(() => helloOf(fake, 'k1'));
      await settle();
      const [first, second, third] = hellos as [HelloClient, HelloClient, HelloClient];
      assert.ok(first.upstream !== null, 'the first opened an upstream');
      assert.ok(second.pending && third.pending, 'the other two wait for a slot');
      const lent = await fake.pool.checkoutForLogon(
        specOf('k1'),
        logonOf('alice').login,
        logonOf('alice').logon,
        first.upstream,
      );
      assert.ok(!('refused' in lent));
      lent.upstream.lend();
      if (freed === 'returned') await release(fake, lent.upstream);
      else {
        fake.pool.release(lent.upstream, { destroy: 'client_left_mid_message' });
        await settle();
      }
      // The second is woken, finds the first's HELLO reply recorded and needs no upstream; its client leaves.
      assert.ok(!second.pending && second.upstream === null, 'the second got the recorded reply');
      assert.ok(!third.pending, 'the third is woken too, with the slot beside it free, not left for acquireTimeoutMs');
      assert.equal(third.upstream, null, 'and it gets the recorded reply as well');
      assert.equal(fake.pool.counts().waiting, 0);
      const client = logon(fake, 'k1');
      await settle();
      assert.ok(!client.pending, 'its LOGON is served at once');
      assert.equal(fake.observer.checkouts.filter((result) => result === 'timed_out').length, 0);
    });
  }
});

describe('limits and eviction', () => {
  it('maxUpstreamsPerKey bounds one key, maxUpstreams all of them', async () => {
    const fake = fakePool({ maxUpstreams: 3, maxUpstreamsPerKey: 2 });
    await lentTo(fake, 'k1');
    await lentTo(fake, 'k1');
    const third = logon(fake, 'k1');
    await settle();
    assert.ok(third.pending, 'a third of k1 waits');
    await lentTo(fake, 'k2');
    const fourth = logon(fake, 'k3');
    await settle();
    assert.ok(fourth.pending, 'nothing beyond maxUpstreams');
    assert.equal(fake.server.live.length, 3);
    assert.deepEqual(fake.pool.counts(), { states: { idle: 0, in_use: 3, opening: 0, resetting: 0 }, waiting: 2 });
  });

  it('an idle upstream of another key is closed (evicted) to make room', async () => {
    const fake = fakePool({ maxUpstreams: 1 });
    const k1 = await lentTo(fake, 'k1');
    await release(fake, k1);
    assert.equal(fake.pool.counts().states.idle, 1);
    const k2 = await lentTo(fake, 'k2');
    assert.equal(k1.state, 'gone');
    assert.equal(fake.observer.closed('evicted'), 1);
    assert.equal(k2.key, 'k2');
  });
});

describe('idle timeout and minIdle', () => {
  it('closes upstreams unused for idleTimeoutMs at the next sweep, leaving minIdle of them', async () => {
    const fake = fakePool({ idleTimeoutMs: 5000, minIdle: 1 });
    const a = await lentTo(fake);
    const b = await lentTo(fake);
    await release(fake, a);
    await release(fake, b);
    // The top-up counts both as spare: nothing more is opened.
    assert.equal(fake.server.opened.length, 2);
    await fake.clock.advance(4999);
    assert.equal(fake.observer.closed('idle_timeout'), 0);
    await fake.clock.advance(1);
    assert.deepEqual(
      fake.observer.closes.map((close) => [close.reason, close.atMs]),
      [['idle_timeout', 5000]],
    );
    assert.equal(a.state, 'gone', 'the oldest returned one goes, the warmest stays');
    await fake.clock.advance(60_000);
    assert.equal(fake.pool.counts().states.idle, 1, 'minIdle keeps one');
  });

  it('minIdle tops a Bolt 5.1+ key in use up with HELLO-only upstreams, into free slots only', async () => {
    const fake = fakePool({ minIdle: 2, maxUpstreams: 3 });
    const lent = await lentTo(fake);
    await settle();
    const warm = fake.server.live.filter((upstream) => upstream !== lent);
    assert.equal(warm.length, 2);
    for (const upstream of warm) {
      assert.equal(upstream.login, null, 'no login held');
      assert.deepEqual(upstream.requests, [BoltSignature.HELLO]);
    }
    assert.equal(fake.pool.counts().states.idle, 2);
    // The next client takes a pre-warmed one and pays only its LOGON.
    const next = await lentTo(fake, 'k1', 'bob');
    assert.ok(warm.includes(next), 'a pre-warmed one');
    assert.deepEqual(next.requests, [BoltSignature.HELLO, BoltSignature.LOGON]);
    await settle();
    assert.equal(fake.server.opened.length, 3, 'no slot left for a top-up: maxUpstreams 3');
  });
});

describe('maxLifetimeMs', () => {
  it('spreads lifetimes over their last 20% with the random source, exactly', async () => {
    const lifetimeMs = 20_000;
    const randoms = [0, 0.3, 0.6];
    const fake = fakePool({ maxLifetimeMs: lifetimeMs }, { random: playedBack(randoms) });
    const upstreams = [await lentTo(fake), await lentTo(fake), await lentTo(fake)];
    assert.deepEqual(
      upstreams.map((upstream) => upstream.expiresAtMs),
      randoms.map((random) => lifetimeMs * (1 - LIFETIME_SPREAD * random)),
    );
    for (const upstream of upstreams) await release(fake, upstream);
    await fake.clock.advance(lifetimeMs);
    // Closed at the first sweep at or after each one's expiry: 20000, 18800 -> 19000, 17600 -> 18000.
    assert.deepEqual(
      fake.observer.closes.map((close) => [close.reason, close.atMs]),
      [
        ['max_lifetime', 18_000],
        ['max_lifetime', 19_000],
        ['max_lifetime', 20_000],
      ],
    );
  });

  it('never closes a lent upstream past its lifetime: it closes when returned', async () => {
    const fake = fakePool({ maxLifetimeMs: 10_000 });
    const upstream = await lentTo(fake);
    await fake.clock.advance(30_000);
    assert.equal(upstream.state, 'borrowed');
    assert.equal(fake.observer.closes.length, 0);
    await release(fake, upstream);
    assert.deepEqual(
      fake.observer.closes.map((close) => close.reason),
      ['max_lifetime'],
    );
  });
});

describe('livenessCheckAfterIdleMs', () => {
  it('sends a RESET before lending an upstream idle that long; a silent one is replaced', async () => {
    const fake = fakePool({ livenessCheckAfterIdleMs: 1000 }, { mode: 'transaction' });
    const upstream = await lentTo(fake);
    await release(fake, upstream);
    const sent = () => upstream.requests.slice(2);
    await fake.clock.advance(999);
    await logon(fake, 'k1', 'alice', 'right', { verifiedLogin: true }).done;
    assert.deepEqual(sent(), [BoltSignature.RESET], 'the RESET of its return only');
    await release(fake, upstream);
    await fake.clock.advance(1000);
    await logon(fake, 'k1', 'alice', 'right', { verifiedLogin: true }).done;
    assert.deepEqual(sent(), [BoltSignature.RESET, BoltSignature.RESET, BoltSignature.RESET], 'a liveness RESET');
    await release(fake, upstream);
    await fake.clock.advance(1000);
    upstream.silenced = true;
    const client = logon(fake, 'k1', 'alice', 'right', { verifiedLogin: true });
    await settle();
    assert.ok(client.pending, 'waiting for the RESET');
    await fake.clock.advance(1000);
    await client.done;
    assert.notEqual(client.upstream, upstream, 'a new upstream');
    assert.equal(upstream.state, 'gone');
    assert.equal(fake.observer.closed('no_answer'), 1);
  });
});

describe('lendIdleVerified: the next unit of work of a client Neo4j verified', () => {
  it('lends an idle upstream with the same login at once and sends Neo4j nothing; never another login or key, none while paused, none due a liveness check', async () => {
    const fake = fakePool({ livenessCheckAfterIdleMs: 1000 }, { mode: 'transaction' });
    const upstream = await lentTo(fake);
    fake.pool.release(upstream, { pendingSummaries: 0, ready: true });
    await settle();
    const requests = upstream.requests.length;
    const alice = logonOf('alice').login;
    assert.equal(fake.pool.lendIdleVerified(specOf('k1'), logonOf('bob').login), null, 'another user');
    assert.equal(fake.pool.lendIdleVerified(specOf('k1'), logonOf('alice', 'wrong').login), null, 'another password');
    assert.equal(fake.pool.lendIdleVerified(specOf('k2'), alice), null, 'another key');
    fake.pool.pause();
    assert.equal(fake.pool.lendIdleVerified(specOf('k1'), alice), null, 'paused: the full checkout holds it');
    fake.pool.resume();
    await fake.clock.advance(999);
    const lent = fake.pool.lendIdleVerified(specOf('k1'), alice);
    assert.equal(lent?.upstream, upstream);
    assert.equal(fake.pool.lendIdleVerified(specOf('k1'), alice), null, 'lent once');
    assert.equal(upstream.requests.length, requests, 'no round trip');
    upstream.lend();
    fake.pool.release(upstream, { pendingSummaries: 0, ready: true });
    await settle();
    await fake.clock.advance(1000);
    assert.equal(fake.pool.lendIdleVerified(specOf('k1'), alice), null, 'idle long enough to be checked first');
    await logon(fake, 'k1', 'alice', 'right', { verifiedLogin: true }).done;
    assert.deepEqual(upstream.requests.slice(requests), [BoltSignature.RESET], 'the full checkout checked it');
  });
});

describe('login cache', () => {
  it('answers the same login from the cache within authCacheSeconds, and asks Neo4j after', async () => {
    const fake = fakePool({ authCacheSeconds: 10 });
    const upstream = await lentTo(fake);
    await release(fake, upstream);
    await fake.clock.advance(10_000);
    const cached = await lentTo(fake);
    assert.equal(cached, upstream);
    assert.deepEqual(fake.observer.logins, ['verified', 'cached']);
    await release(fake, upstream);
    await fake.clock.advance(1);
    await lentTo(fake);
    assert.deepEqual(fake.observer.logins, ['verified', 'cached', 'verified'], 'past the window');
    assert.equal(fake.server.logons, 2);
  });

  it('a refused login of a user drops the cached logins of that user, not of others', async () => {
    const fake = fakePool({ authCacheSeconds: 60 });
    fake.server.passwords.set('carol', 'right');
    const alice = await lentTo(fake, 'k1', 'alice');
    const bob = await lentTo(fake, 'k1', 'bob');
    const carol = await lentTo(fake, 'k1', 'carol');
    for (const upstream of [alice, bob, carol]) await release(fake, upstream);
    // The wrong password lands on the warmest idle upstream (carol's), which is closed.
    const wrong = logon(fake, 'k1', 'alice', 'wrong');
    await wrong.done;
    assert.ok(wrong.outcome !== null && 'refused' in wrong.outcome, "Neo4j's refusal relayed");
    assert.equal(carol.state, 'gone');
    assert.equal(fake.observer.closed('login_refused'), 1);
    fake.observer.logins.length = 0;
    assert.equal(await lentTo(fake, 'k1', 'bob'), bob);
    assert.equal(await lentTo(fake, 'k1', 'alice'), alice);
    assert.deepEqual(fake.observer.logins, ['cached', 'verified'], "bob's login is cached, alice's reaches Neo4j");
  });
});

describe('no upstream is lent twice', () => {
  it('eight clients on four upstreams, returned in turn: each held by one client at a time', async () => {
    const fake = fakePool({ maxUpstreams: 4 });
    const clients = Array.from({ length: 8 }, (_, index) => logon(fake, 'k1', index % 2 === 0 ? 'alice' : 'bob'));
    await settle();
    const held = new Set<FakeUpstream>();
    for (const client of clients.slice(0, 4)) {
      assert.ok(!held.has(client.upstream), 'held by one client');
      held.add(client.upstream);
    }
    for (const [index, client] of clients.slice(0, 4).entries()) {
      held.delete(client.upstream);
      await release(fake, client.upstream);
      const next = clients[4 + index];
      assert.ok(next !== undefined && !next.pending, 'the next client served');
      assert.ok(!held.has(next.upstream), 'not lent while another client holds it');
      held.add(next.upstream);
    }
    assert.equal(fake.server.opened.length, 4);
  });
});

describe('deadline on every step on Neo4j’s side (neo4j.connectionTimeoutMs)', () => {
  it('new upstreams that are accepted and never answered are destroyed at the deadline and free their slots', async () => {
    const fake = fakePool({ maxUpstreams: 4, connectTimeoutMs: 1000, acquireTimeoutMs: 60_000 });
    fake.server.answering = false;
    const clients = Array.from({ length: 6 }, () => logon(fake, 'k1'));
    await settle();
    assert.deepEqual(fake.pool.counts(), { states: { idle: 0, in_use: 0, opening: 4, resetting: 0 }, waiting: 2 });
    await fake.clock.advance(999);
    assert.equal(fake.pool.counts().states.opening, 4);
    await fake.clock.advance(1);
    // The four are gone and their clients failed; the two waiting took the slots and open in turn.
    assert.equal(fake.observer.closed('no_answer'), 4);
    assert.equal(clients.filter((client) => client.error instanceof UpstreamClosedError).length, 4);
    assert.deepEqual(fake.pool.counts(), { states: { idle: 0, in_use: 0, opening: 2, resetting: 0 }, waiting: 0 });
    await fake.clock.advance(1000);
    assert.equal(fake.observer.closed('no_answer'), 6);
    assert.ok(
      clients.every((client) => client.error instanceof UpstreamClosedError),
      'every client failed, none left waiting',
    );
    assert.deepEqual(fake.pool.counts(), { states: { idle: 0, in_use: 0, opening: 0, resetting: 0 }, waiting: 0 });
    // Neo4j back: the next client is served.
    fake.server.answering = true;
    await lentTo(fake);
  });

  it('each step of opening has the whole timeout: connected late, then silent', async () => {
    const fake = fakePool({ connectTimeoutMs: 1000 });
    fake.server.connecting = false;
    const client = logon(fake, 'k1');
    await fake.clock.advance(900);
    const upstream = fake.server.opened[0];
    assert.ok(upstream !== undefined && client.pending, 'opening, the client waiting');
    // TCP up at 900 ms (the handshake still unanswered): the deadline starts again.
    connected(fake, upstream);
    await fake.clock.advance(999);
    assert.equal(upstream.state, 'connecting');
    await fake.clock.advance(1);
    assert.equal(upstream.state, 'gone');
    assert.deepEqual(
      fake.observer.closes.map((close) => [close.reason, close.atMs]),
      [['no_answer', 1900]],
    );
    assert.ok(client.error instanceof UpstreamClosedError, 'the client failed');
  });

  it('an unanswered LOGOFF+LOGON on an idle upstream closes it, and the client gets a new one', async () => {
    const fake = fakePool({ connectTimeoutMs: 1000 });
    const upstream = await lentTo(fake);
    await release(fake, upstream);
    upstream.silenced = true;
    const client = logon(fake, 'k1', 'bob');
    await fake.clock.advance(1000);
    await client.done;
    assert.notEqual(client.upstream, upstream);
    assert.deepEqual(
      fake.observer.closes.map((close) => [close.reason, close.atMs]),
      [['no_answer', 1000]],
    );
  });

  it('an unanswered RESET after a client returns its upstream closes it and frees the slot', async () => {
    const fake = fakePool({ maxUpstreams: 1, connectTimeoutMs: 1000 });
    const upstream = await lentTo(fake);
    upstream.silenced = true;
    fake.pool.release(upstream, { pendingSummaries: 0 });
    const waiting = logon(fake, 'k1');
    await settle();
    assert.equal(fake.pool.counts().states.resetting, 1);
    assert.ok(waiting.pending, 'waiting for the slot');
    await fake.clock.advance(1000);
    await waiting.done;
    assert.equal(fake.observer.closed('no_answer'), 1);
    assert.notEqual(waiting.upstream, upstream);
  });
});

/** What the real upstream reports when TCP (and TLS) is up. */
function connected(fake: FakePool, upstream: FakeUpstream): void {
  assert.ok(fake.server.opened.includes(upstream), "one of the pool's");
  upstream.connectNow();
}
