/**
 * Label values that come from clients or the server (query texts, error codes and messages, user
 * agents) must not grow the number of series: 100,000 distinct query texts and errors and a flood of
 * distinct user agents through the proxy leave every metric family within the recorder's bound.
 * A scripted server stands in for Neo4j, so the test controls the errors (a hostile or buggy server
 * could send any code) and runs in bounded time.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { BoltDechunker, BoltSignature, decodeBoltMessage } from '../../src/proxy/bolt/index.ts';
import { startTestProxy, type TestProxy } from '../proxy/support.ts';
import { handshakeOffers, map, message, splitAddress } from '../support/raw-bolt.ts';

const DISTINCT_QUERIES = 100_000;
const USER_AGENTS_LIMIT = 100_000;
const USER_AGENT_BUDGET_MS = 20_000;
const MIN_USER_AGENTS = 2_000;
const CONCURRENT_CONNECTIONS = 32;
/** The recorder's default maxSeriesPerMetric, plus the one "other" series new label sets fold into. */
const SERIES_BOUND = 1000 + 1;

/** Bolt 4.4 just far enough: every RUN with an odd number in it fails with a code and message of its own. */
function startScriptedServer(): Promise<{ uri: string; close: () => Promise<void> }> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    let handshaken = false;
    let pending = Buffer.alloc(0);
    const dechunker = new BoltDechunker({
      keepPayload: () => true,
      onMessage: (frame) => {
        const decoded = decodeBoltMessage(frame.payload ?? Buffer.alloc(0));
        switch (decoded.signature) {
          case BoltSignature.RUN: {
            const text = String(decoded.fields[0]);
            const n = Number(/\d+/.exec(text)?.[0] ?? 0);
            if (n % 2 === 1) {
              socket.write(
                message(
                  BoltSignature.FAILURE,
                  map({ code: `Neo.ClientError.Statement.Invented${n}`, message: `no such thing as ${n}` }),
                ),
              );
            } else socket.write(message(BoltSignature.SUCCESS, map({ fields: ['n'], t_first: 0 })));
            return;
          }
          case BoltSignature.PULL:
            socket.write(message(BoltSignature.SUCCESS, map({ type: 'r', t_last: 0, db: 'neo4j' })));
            return;
          case BoltSignature.GOODBYE:
            socket.end();
            return;
          default:
            socket.write(message(BoltSignature.SUCCESS, map({ server: 'Neo4j/5.26.0', connection_id: 'bolt-1' })));
        }
      },
    });
    socket.on('data', (data: Buffer) => {
      if (handshaken) return dechunker.feed(data);
      pending = Buffer.concat([pending, data]);
      if (pending.length < 20) return;
      handshaken = true;
      socket.write(Buffer.from([0, 0, 4, 4]));
      if (pending.length > 20) dechunker.feed(pending.subarray(20));
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        uri: `bolt://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
        close: () => new Promise<void>((done) => server.close(() => done())),
      }),
    ),
  );
}

/** Writes everything, ends the connection and waits for the peer to close it. */
function converse(address: string, bytes: Buffer): Promise<void> {
  const [host, port] = splitAddress(address);
  return new Promise((resolve) => {
    const socket = net.connect({ host, port }, () => socket.end(bytes));
    socket.on('data', () => {});
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
  });
}

const hello = (userAgent: string) =>
  message(BoltSignature.HELLO, map({ user_agent: userAgent, scheme: 'basic', principal: 'u', credentials: 'p' }));
const goodbye = () => message(BoltSignature.GOODBYE);

let scripted: { uri: string; close: () => Promise<void> };
let proxy: TestProxy;

before(async () => {
  scripted = await startScriptedServer();
  proxy = await startTestProxy(scripted.uri);
});
after(async () => {
  await proxy?.stop();
  await scripted?.close();
});

async function seriesPerFamily(): Promise<Map<string, number>> {
  proxy.recorder.sample(true);
  const counts = new Map<string, number>();
  for (const family of await proxy.sink.registry.getMetricsAsJSON()) {
    const labelSets = new Set(
      (family.values as Array<{ labels: Record<string, unknown> }>).map((sample) =>
        JSON.stringify(Object.entries(sample.labels).filter(([name]) => name !== 'le')),
      ),
    );
    counts.set(family.name, labelSets.size);
  }
  return counts;
}

function assertBounded(counts: Map<string, number>): void {
  for (const [name, count] of counts) assert.ok(count <= SERIES_BOUND, `${name} has ${count} series`);
}

describe('cardinality under distinct client and server strings', () => {
  it(`${DISTINCT_QUERIES} distinct query texts, half failing with their own code and message`, async (t) => {
    const perConnection = DISTINCT_QUERIES / CONCURRENT_CONNECTIONS;
    await Promise.all(
      Array.from({ length: CONCURRENT_CONNECTIONS }, async (_, connection) => {
        const messages: Buffer[] = [handshakeOffers([4, 4, 4]), hello('neo4j-javascript/6.0.0')];
        for (let index = 0; index < perConnection; index++) {
          const n = connection * perConnection + index;
          messages.push(
            message(BoltSignature.RUN, `RETURN ${n} AS n /* ${n} */`, map({}), map({})),
            message(BoltSignature.PULL, map({ n: -1 })),
          );
          if (n % 2 === 1) messages.push(message(BoltSignature.RESET));
        }
        messages.push(goodbye());
        await converse(proxy.proxy.address, Buffer.concat(messages));
      }),
    );
    const errors = await proxy.metric('neo4j_query_errors_total', { source: 'proxy' });
    assert.equal(errors, DISTINCT_QUERIES / 2, 'every failure was counted');
    const counts = await seriesPerFamily();
    t.diagnostic(`neo4j_query_errors_total series: ${counts.get('neo4j_query_errors_total')}`);
    assertBounded(counts);
  });

  it('a flood of distinct user agents', async (t) => {
    const started = Date.now();
    let sent = 0;
    const worker = async () => {
      // At least twice the per-metric series cap whatever the machine's load, then as many as the budget allows.
      while (sent < USER_AGENTS_LIMIT && (sent < MIN_USER_AGENTS || Date.now() - started < USER_AGENT_BUDGET_MS)) {
        const index = sent++;
        const agent = index % 2 === 0 ? `neo4j-python/5.${index}.0` : `custom-agent-${index}/1.0`;
        await converse(proxy.proxy.address, Buffer.concat([handshakeOffers([4, 4, 4]), hello(agent), goodbye()]));
      }
    };
    await Promise.all(Array.from({ length: CONCURRENT_CONNECTIONS }, worker));
    const counts = await seriesPerFamily();
    t.diagnostic(`${sent} user agents in ${Date.now() - started} ms`);
    assertBounded(counts);
    assert.ok(
      (counts.get('neo4j_proxy_client_connections_opened_total') ?? 0) < 50,
      `user agents are folded into families: ${counts.get('neo4j_proxy_client_connections_opened_total')} series after ${sent} agents`,
    );
  });
});
