/**
 * Model-based test of UpstreamPool: fast-check runs random sequences of checkouts, returns, closes by
 * Neo4j, freezes and thaws of Neo4j, Neo4j replaced (a new server agent: recorded HELLO replies are
 * forgotten) and moves of the (fake) clock against the real pool, and after each command compares the
 * pool with a simple model of the clients (who waits, who holds what, since when). A checkout is either a
 * LOGON on its own (the HELLO was answered from a recorded reply) or, as the proxy's login does for a key
 * with no reply recorded, openWithHello first (which may end on a reply another client recorded), then the
 * LOGON with the upstream it opened, or the client leaves after its HELLO:
 *
 * - no upstream is held by two clients at once, and every held one is in the borrowed state;
 * - at most maxUpstreams upstreams are open, at most maxUpstreamsPerKey of one key;
 * - the pool's gauges are the upstreams' states counted, in_use is the clients holding one, and every
 *   upstream opened is either open or was reported closed exactly once;
 * - with Neo4j answering, every client still asking is waiting (the waiting gauge), none waits while
 *   its key has room (no lost wake-up), and no client is served before an earlier one of the same key
 *   that was already waiting;
 * - a client fails only for a cause: acquireTimeoutMs passed, or Neo4j frozen or closing upstreams.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BoltSignature } from '../../../src/proxy/bolt/index.ts';
import {
  type Lent,
  PoolTimeoutError,
  type Refused,
  STATE_LABELS,
  type UpstreamStateLabel,
} from '../../../src/proxy/pool/pool.ts';
import { type FakePool, type FakeUpstream, fakePool, logonOf, settle, specOf } from './fakes.ts';

const SETTINGS = {
  maxUpstreams: 3,
  maxUpstreamsPerKey: 2,
  acquireTimeoutMs: 3000,
  connectTimeoutMs: 1000,
  idleTimeoutMs: 4000,
  maxLifetimeMs: 10_000,
} as const;

interface Client {
  readonly id: number;
  readonly key: string;
  readonly startedMs: number;
  /**
   * The LOGON of a client whose HELLO went through openWithHello: it comes in the same tick its HELLO's
   * wait ended (a real client's comes a round trip later), so it is left out of the order of service.
   */
  readonly followsHello: boolean;
  /** answered: its HELLO was answered (its LOGON, if it sent one, is another client, checked on its own). */
  state: 'asking' | 'holding' | 'refused' | 'failed' | 'returned' | 'lost' | 'answered';
  upstream: FakeUpstream | null;
  error: unknown;
  failedAtMs: number;
  /** Was asking at the last check while Neo4j answered: it was waiting in the pool's queue. */
  queued: boolean;
}

interface World {
  readonly fake: FakePool;
  readonly clients: Client[];
  /**
   * Neo4j answers everything from this time on: frozen it is Infinity, thawed it is connectTimeoutMs
   * later, when the steps begun while frozen have met their deadline (a frozen Neo4j's answers never come).
   */
  calmFromMs: number;
  /** Neo4j closed an upstream in this command: a client may fail for it. */
  closedOne: boolean;
}

type Model = { readonly world: World };

function asking(world: World, key: string, followsHello = false): Client {
  const client: Client = {
    id: world.clients.length,
    key,
    startedMs: world.fake.clock.now(),
    followsHello,
    state: 'asking',
    upstream: null,
    error: null,
    failedAtMs: Number.NaN,
    queued: false,
  };
  world.clients.push(client);
  return client;
}

function failed(world: World, client: Client, error: unknown): void {
  client.error = error;
  client.failedAtMs = world.fake.clock.now();
  client.state = 'failed';
}

/** A Bolt 5.1+ client's HELLO for a key with no reply recorded, then its LOGON, or it leaves (`leaves`). */
function startWithHello(world: World, key: string, user: string, password: string, leaves: boolean): void {
  const { pool } = world.fake;
  if (pool.recordedHello(key) !== null) {
    if (!leaves) start(world, key, user, password, null);
    return;
  }
  const client = asking(world, key);
  pool.openWithHello(specOf(key)).then(
    ({ upstream, reply }) => {
      client.state = reply.signature === BoltSignature.SUCCESS ? 'answered' : 'refused';
      if (upstream === null) {
        if (client.state === 'answered' && !leaves) start(world, key, user, password, null, true);
      } else if (leaves) pool.release(upstream, { destroy: 'abandoned' });
      else start(world, key, user, password, upstream, true);
    },
    (error: unknown) => failed(world, client, error),
  );
}

function start(
  world: World,
  key: string,
  user: string,
  password: string,
  held: FakeUpstream | null,
  followsHello = false,
): void {
  const { login, logon } = logonOf(user, password);
  const client = asking(world, key, followsHello);
  world.fake.pool.checkoutForLogon(specOf(key), login, logon, held).then(
    (outcome: Lent<FakeUpstream> | Refused) => {
      if ('refused' in outcome) {
        client.state = 'refused';
        return;
      }
      outcome.upstream.lend();
      client.upstream = outcome.upstream;
      client.state = 'holding';
    },
    (error: unknown) => failed(world, client, error),
  );
}

/** Every invariant, after the command's effects settled. `served`: clients served by this command. */
function check(world: World, before: ReadonlyMap<number, Client['state']>): void {
  const { fake, clients } = world;
  // A failure or wait seen at this check may come from the freeze until then.
  const calm = fake.clock.now() > world.calmFromMs;
  const live = fake.server.live;
  const holding = clients.filter((client) => client.state === 'holding');

  // Never lent twice.
  const held = new Set<FakeUpstream>();
  for (const client of holding) {
    const upstream = client.upstream as FakeUpstream;
    if (upstream.state === 'gone') {
      client.state = 'lost';
      continue;
    }
    assert.ok(!held.has(upstream), `upstream ${upstream.id} held by two clients`);
    held.add(upstream);
    assert.equal(upstream.state, 'borrowed', `upstream ${upstream.id} held by client ${client.id}`);
  }

  // Limits.
  assert.ok(live.length <= SETTINGS.maxUpstreams, `${live.length} upstreams open`);
  const perKey = new Map<string, number>();
  for (const upstream of live) perKey.set(upstream.key, (perKey.get(upstream.key) ?? 0) + 1);
  for (const [key, count] of perKey) assert.ok(count <= SETTINGS.maxUpstreamsPerKey, `${count} upstreams of ${key}`);

  // Gauges.
  const tally: Record<UpstreamStateLabel, number> = { idle: 0, in_use: 0, opening: 0, resetting: 0 };
  for (const upstream of live) {
    const label = STATE_LABELS[upstream.state];
    if (label !== null) tally[label]++;
  }
  const counts = fake.pool.counts();
  assert.deepEqual(counts.states, tally, 'gauges are the states counted');
  assert.equal(counts.states.in_use, held.size, 'in_use is the clients holding one');
  assert.equal(fake.observer.closes.length, fake.server.opened.length - live.length, 'each close reported once');

  // Failures have a cause.
  for (const client of clients) {
    if (client.state !== 'failed' || before.get(client.id) !== 'asking') continue;
    if (client.error instanceof PoolTimeoutError) {
      assert.ok(
        fake.clock.now() - client.startedMs >= SETTINGS.acquireTimeoutMs,
        `client ${client.id} timed out early`,
      );
    } else {
      const troubled = client.failedAtMs <= world.calmFromMs || world.closedOne;
      assert.ok(troubled, `client ${client.id} failed with Neo4j answering: ${String(client.error)}`);
    }
  }

  const asking = clients.filter((client) => client.state === 'asking');
  if (calm) {
    // Waiters served in order: nobody served now overtook an earlier one of its key already waiting.
    for (const served of clients.filter((client) => before.get(client.id) === 'asking' || !before.has(client.id))) {
      if (served.state !== 'holding' || served.followsHello) continue;
      for (const earlier of asking) {
        assert.ok(
          earlier.followsHello || !(earlier.queued && earlier.key === served.key && earlier.id < served.id),
          `client ${served.id} served before client ${earlier.id} of ${served.key}, waiting since before`,
        );
      }
    }
    assert.equal(counts.waiting, asking.length, 'with Neo4j answering, every client still asking waits');
    for (const client of asking) {
      const room = live.length < SETTINGS.maxUpstreams || counts.states.idle > 0;
      const keyRoom = (perKey.get(client.key) ?? 0) < SETTINGS.maxUpstreamsPerKey;
      const idleOfKey = live.some((upstream) => upstream.key === client.key && upstream.state === 'idle');
      assert.ok(!((room && keyRoom) || idleOfKey), `client ${client.id} waits while ${client.key} has room`);
    }
  }
  for (const client of clients) client.queued = client.state === 'asking' && calm;
  world.closedOne = false;
}

abstract class Step implements fc.AsyncCommand<Model, World> {
  check(): boolean {
    return true;
  }
  async run(_model: Model, world: World): Promise<void> {
    const before = new Map(world.clients.map((client) => [client.id, client.state]));
    await this.apply(world);
    await settle();
    check(world, before);
  }
  abstract apply(world: World): Promise<void> | void;
  abstract toString(): string;
}

class Checkout extends Step {
  constructor(
    readonly key: string,
    readonly user: string,
    readonly wrongPassword: boolean,
  ) {
    super();
  }
  apply(world: World): void {
    start(world, this.key, this.user, this.wrongPassword ? 'wrong' : 'right', null);
  }
  toString(): string {
    return `checkout(${this.key}, ${this.user}${this.wrongPassword ? ', wrong password' : ''})`;
  }
}

class HelloCheckout extends Step {
  constructor(
    readonly key: string,
    readonly user: string,
    readonly leaves: boolean,
  ) {
    super();
  }
  apply(world: World): void {
    startWithHello(world, this.key, this.user, 'right', this.leaves);
  }
  toString(): string {
    return `hello(${this.key}, ${this.user}${this.leaves ? ', leaves after HELLO' : ''})`;
  }
}

/** Neo4j was replaced: the next upstream opened reports a new agent and the pool forgets its HELLO replies. */
class Replaced extends Step {
  apply(world: World): void {
    world.fake.server.agent = `Neo4j/5.26.${world.fake.server.opened.length}`;
  }
  toString(): string {
    return 'replaced';
  }
}

class Return extends Step {
  constructor(
    readonly pick: number,
    readonly destroy: boolean,
  ) {
    super();
  }
  apply(world: World): void {
    const holding = world.clients.filter((client) => client.state === 'holding');
    const client = holding[this.pick % Math.max(1, holding.length)];
    if (client === undefined || client.upstream === null) return;
    client.state = 'returned';
    world.fake.pool.release(
      client.upstream,
      this.destroy ? { destroy: 'client_left_mid_message' } : { pendingSummaries: 0 },
    );
  }
  toString(): string {
    return `return(#${this.pick}${this.destroy ? ', destroy' : ''})`;
  }
}

class ServerCloses extends Step {
  constructor(readonly pick: number) {
    super();
  }
  apply(world: World): void {
    const live = world.fake.server.live;
    const upstream = live[this.pick % Math.max(1, live.length)];
    if (upstream === undefined) return;
    world.closedOne = true;
    upstream.closeFromServer();
  }
  toString(): string {
    return `serverCloses(#${this.pick})`;
  }
}

class Freeze extends Step {
  constructor(readonly frozen: boolean) {
    super();
  }
  apply(world: World): void {
    if (this.frozen) world.calmFromMs = Number.POSITIVE_INFINITY;
    else if (!world.fake.server.answering) world.calmFromMs = world.fake.clock.now() + SETTINGS.connectTimeoutMs;
    world.fake.server.answering = !this.frozen;
  }
  toString(): string {
    return this.frozen ? 'freeze' : 'thaw';
  }
}

class Advance extends Step {
  constructor(readonly ms: number) {
    super();
  }
  apply(world: World): Promise<void> {
    return world.fake.clock.advance(this.ms);
  }
  toString(): string {
    return `advance(${this.ms})`;
  }
}

const checkout = fc
  .tuple(fc.constantFrom('k1', 'k1', 'k1', 'k2', 'k3'), fc.constantFrom('alice', 'bob'), fc.nat(9))
  .map(([key, user, wrong]) => new Checkout(key, user, wrong === 0));
const helloCheckout = fc
  .tuple(fc.constantFrom('k1', 'k2', 'k3', 'k4'), fc.constantFrom('alice', 'bob'), fc.nat(1))
  .map(([key, user, leaves]) => new HelloCheckout(key, user, leaves === 0));
/** Checkouts twice as often as the rest, so the pool fills up and clients queue. */
const commands = [
  checkout,
  helloCheckout,
  helloCheckout,
  fc.constant(new Replaced()),
  fc.tuple(fc.nat(7), fc.boolean()).map(([pick, destroy]) => new Return(pick, destroy)),
  fc.nat(7).map((pick) => new ServerCloses(pick)),
  fc.boolean().map((frozen) => new Freeze(frozen)),
  fc.constantFrom(1, 500, 999, 1000, 3000).map((ms) => new Advance(ms)),
];

describe('UpstreamPool against a model', () => {
  it('keeps its invariants under random checkouts, returns, closes, freezes and timeouts', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.commands(commands, { maxCommands: 80, size: 'medium' }),
        fc.constantFrom(0, 1),
        fc.constantFrom(0, 5),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        async (steps, minIdle, authCacheSeconds, random) => {
          const fake = fakePool({ ...SETTINGS, minIdle, authCacheSeconds }, { random: () => random });
          const world: World = { fake, clients: [], calmFromMs: -1, closedOne: false };
          await fc.asyncModelRun(() => ({ model: { world }, real: world }), steps);
          fake.pool.close();
        },
      ),
      { numRuns: Number(process.env.POOL_MODEL_RUNS ?? 1000), includeErrorInReport: true },
    );
  });
});
