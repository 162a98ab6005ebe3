/**
 * The codec against real traffic: a test-only TCP tap between neo4j-driver (6.x and 5.x) and a real
 * Neo4j observes both directions and, for neo4j:// drivers, replaces routing tables the way the proxy
 * does, through its ServerStreamForwarder (hold back from pendingMessageStart, splice rewritten bytes
 * over [wireStart, wireEnd)).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import neo4j6 from 'neo4j-driver';
import neo4j5 from 'neo4j-driver-5';
import { userAgentFamily } from '../../../src/metrics/user-agent.ts';
import {
  BoltConversationTracker,
  BoltDechunker,
  BoltHandshake,
  type ConversationEvent,
  rewriteRouteSuccess,
  rewriteRoutingProcedureRecord,
} from '../../../src/proxy/bolt/index.ts';
import { ServerStreamForwarder } from '../../../src/proxy/forwarder.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../../support/neo4j.ts';

type DriverModule = typeof neo4j6;

interface TappedConnection {
  readonly handshake: BoltHandshake;
  readonly tracker: BoltConversationTracker;
  readonly events: ConversationEvent[];
  routingTablesRewritten: number;
}

/** A TCP tap in front of Neo4j that follows each connection with the codec. */
class BoltTap {
  readonly connections: TappedConnection[] = [];
  readonly #server = net.createServer((client) => this.#onClient(client));
  #address = '';

  constructor(
    private readonly upstream: { host: string; port: number },
    private readonly rewriteRouting: boolean,
  ) {}

  get address(): string {
    return this.#address;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    const { port } = this.#server.address() as net.AddressInfo;
    this.#address = `127.0.0.1:${port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  events(): ConversationEvent[] {
    return this.connections.flatMap((connection) => connection.events);
  }

  #onClient(client: net.Socket): void {
    const upstream = net.connect(this.upstream);
    const events: ConversationEvent[] = [];
    const tracker = new BoltConversationTracker({ onEvent: (event) => events.push(event) });
    const connection: TappedConnection = { handshake: new BoltHandshake(), tracker, events, routingTablesRewritten: 0 };
    this.connections.push(connection);
    const forwarder = new ServerStreamForwarder();
    const clientMessages = new BoltDechunker({
      keepPayload: tracker.keepClientPayload,
      oversizedPayload: 'drop',
      onMessage: (frame) => tracker.clientMessage(frame, performance.now()),
    });
    const serverMessages = new BoltDechunker({
      keepPayload: tracker.keepServerPayload,
      onMessage: (frame) => {
        const routing = tracker.serverMessage(frame, performance.now());
        if (!this.rewriteRouting || routing === null || frame.payload === null) return;
        const rewritten =
          routing.kind === 'route-success'
            ? rewriteRouteSuccess(frame.payload, this.#address)
            : rewriteRoutingProcedureRecord(frame.payload, this.#address, routing.fields ?? undefined);
        if (rewritten === null) return;
        forwarder.replace(frame.wireStart, frame.wireEnd, rewritten);
        connection.routingTablesRewritten++;
      },
    });
    client.on('data', (data: Buffer) => {
      upstream.write(data);
      const progress = connection.handshake.feedClient(data);
      if (progress.state === 'complete') clientMessages.feed(progress.leftover);
    });
    upstream.on('data', (data: Buffer) => {
      let messageBytes = data;
      if (!connection.handshake.serverComplete) {
        const progress = connection.handshake.feedServer(data);
        const leftoverLength = progress.state === 'incomplete' ? 0 : progress.leftover.length;
        client.write(data.subarray(0, data.length - leftoverLength));
        if (progress.state === 'incomplete') return;
        messageBytes = progress.leftover;
      }
      const offset = serverMessages.bytesFed;
      serverMessages.feed(messageBytes);
      // Hold back only a message that may be replaced: signature unknown yet, or one the tracker keeps.
      const pendingStart = serverMessages.pendingMessageStart;
      const pendingSignature = serverMessages.pendingMessageSignature;
      const mayBeReplaced = pendingSignature === null || tracker.keepServerPayload(pendingSignature);
      const safeEnd = pendingStart !== null && mayBeReplaced ? pendingStart : serverMessages.bytesFed;
      for (const piece of forwarder.take(messageBytes, offset, safeEnd)) {
        if (piece.length > 0) client.write(piece);
      }
    });
    const closeBoth = () => {
      tracker.close(performance.now());
      client.destroy();
      upstream.destroy();
    };
    client.on('close', closeBoth).on('error', closeBoth);
    upstream.on('close', closeBoth).on('error', closeBoth);
  }
}

let server: TestNeo4j;
before(async () => {
  server = await sharedNeo4j();
});
after(releaseSharedNeo4j);

const drivers: [string, DriverModule, string][] = [
  ['neo4j-driver 6.x', neo4j6, 'neo4j-javascript/6'],
  ['neo4j-driver 5.x', neo4j5 as unknown as DriverModule, 'neo4j-javascript/5'],
];

for (const [driverName, neo4j, family] of drivers) {
  describe(`the Bolt codec on real ${driverName} traffic`, () => {
    const quiet = { logging: { level: 'error' as const, logger: () => {} } };

    async function withTap<T>(rewriteRouting: boolean, use: (tap: BoltTap) => Promise<T>): Promise<T> {
      const url = new URL(server.uri);
      const tap = new BoltTap({ host: url.hostname, port: Number(url.port || 7687) }, rewriteRouting);
      await tap.start();
      try {
        return await use(tap);
      } finally {
        await tap.stop();
      }
    }

    it('follows handshake, HELLO/LOGON, auto-commit and explicit transactions, and failures', async () => {
      await withTap(false, async (tap) => {
        const driver = neo4j.driver(`bolt://${tap.address}`, neo4j.auth.basic(server.username, server.password), quiet);
        try {
          const session = driver.session({ defaultAccessMode: neo4j.session.READ });
          await session.run('UNWIND range(1, 3) AS x RETURN x');
          await session.executeRead((tx) => tx.run('RETURN 1 AS one'));
          await assert.rejects(session.run('RETRUN 1'));
          await session.close();
        } finally {
          await driver.close();
        }
        const [connection] = tap.connections;
        assert.ok(connection);
        assert.ok(connection.handshake.negotiatedVersion, 'a version was agreed');
        assert.equal(connection.handshake.outcome, 'agreed');
        assert.ok(
          connection.handshake.clientOffers?.some((offer) => offer.kind === 'manifest'),
          'drivers 5.28+ offer the manifest handshake (Neo4j 5.26 takes it and agrees on Bolt 5.8)',
        );
        const events = tap.events();
        assert.equal(userAgentFamily(connection.tracker.clientUserAgent), family);
        const queries = events.filter((event) => event.type === 'queryFinished');
        assert.deepEqual(
          queries.map(({ outcome, mode, inExplicitTransaction, recordCount }) => ({
            outcome,
            mode,
            inExplicitTransaction,
            recordCount,
          })),
          [
            { outcome: 'success', mode: 'read', inExplicitTransaction: false, recordCount: 3 },
            { outcome: 'success', mode: 'read', inExplicitTransaction: true, recordCount: 1 },
            { outcome: 'error', mode: 'read', inExplicitTransaction: false, recordCount: 0 },
          ],
        );
        assert.equal(queries[0]?.database, 'neo4j', 'from the final SUCCESS');
        assert.equal(queries[2]?.database, 'neo4j', 'a FAILURE names none: the home database learnt before');
        // 42001 where the server gives a specific GQL status; Neo4j 5.26 gives only the generic 50N42.
        assert.match(queries[2]?.errorCode ?? '', /^(42001|Neo\.ClientError\.Statement\.SyntaxError)$/);
        assert.ok(queries.every((query) => query.durationSeconds >= 0 && query.durationSeconds < 30));
      });
    });

    it('reports a wrong password as an auth failure', async () => {
      await withTap(false, async (tap) => {
        const driver = neo4j.driver(
          `bolt://${tap.address}`,
          neo4j.auth.basic(server.username, 'wrong-password'),
          quiet,
        );
        try {
          await assert.rejects(driver.verifyConnectivity());
        } finally {
          await driver.close();
        }
        const failure = tap.events().find((event) => event.type === 'authFailure');
        assert.ok(failure, 'an authFailure event');
        assert.match(failure.code ?? '', /^(Neo\.ClientError\.Security\.Unauthorized|42NFF)$/);
      });
    });

    it('keeps a neo4j:// driver on the tap by rewriting its routing tables', async () => {
      await withTap(true, async (tap) => {
        const driver = neo4j.driver(
          `neo4j://${tap.address}`,
          neo4j.auth.basic(server.username, server.password),
          quiet,
        );
        const runs = 4;
        try {
          for (let run = 0; run < runs; run++) {
            await driver.executeQuery('RETURN $run AS run', { run }, { routing: run % 2 === 0 ? 'READ' : 'WRITE' });
          }
        } finally {
          await driver.close();
        }
        const events = tap.events();
        assert.ok(tap.connections.some((connection) => connection.routingTablesRewritten > 0));
        const userQueries = events.filter((event) => event.type === 'queryFinished' && event.outcome === 'success');
        assert.ok(userQueries.length >= runs, `all ${runs} queries went through the tap, not straight to Neo4j`);
      });
    });
  });
}
