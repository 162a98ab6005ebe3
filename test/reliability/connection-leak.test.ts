/**
 * 10,000 client connections through the proxy to a real Neo4j (handshake, HELLO, GOODBYE), opened and
 * closed in bounded time, leave the heap where it was: per-connection state (trackers, timers,
 * listeners, per-client metric handles) must all be released. Measured in-process after forced GCs,
 * which is steadier than resident memory and sees the same leaks.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createLogger } from '../../src/logger.ts';
import { BoltSignature } from '../../src/proxy/bolt/index.ts';
import { startTestProxy, type TestProxy } from '../proxy/support.ts';
import { releaseSharedNeo4j, sharedNeo4j } from '../support/neo4j.ts';
import { handshakeOffers, map, message, splitAddress } from '../support/raw-bolt.ts';

const CONNECTIONS = 10_000;
const WARM_UP = 500;
const CONCURRENCY = 32;
/**
 * A guard against a proxy that leaves connections open (each would wait out the client's 10 s timeout:
 * ~50 min for the run), not a speed check: 10,000 took 21 s with the machine's load average at 14.
 */
const BUDGET_MS = 300_000;
const ALLOWED_GROWTH = 0.1;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let proxy: TestProxy;
before(async () => {
  const server = await sharedNeo4j();
  // The test proxy keeps every debug line (one per closed connection) in memory; that is not the proxy's.
  const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
  proxy = await startTestProxy(server.uri, {
    logger: createLogger({ level: 'warn', pretty: 'never', destination: discard }),
  });
});
after(async () => {
  await proxy?.stop();
  await releaseSharedNeo4j();
});

const HELLO_GOODBYE = Buffer.concat([
  message(BoltSignature.HELLO, map({ user_agent: 'leak-test/1.0', bolt_agent: map({ product: 'leak-test/1.0' }) })),
  message(BoltSignature.GOODBYE),
]);

/** Handshake (Bolt 5.0 to 5.4), HELLO without logging in, GOODBYE; resolves once the proxy has closed it. */
function oneConnection(address: string): Promise<void> {
  const [host, port] = splitAddress(address);
  return new Promise((resolve) => {
    const socket = net.connect({ host, port }, () => socket.write(handshakeOffers([4, 4, 5])));
    let answered = false;
    socket.on('data', () => {
      if (answered) return;
      answered = true;
      socket.end(HELLO_GOODBYE);
    });
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
    socket.setTimeout(10_000, () => socket.destroy());
  });
}

async function churn(count: number, deadline: number): Promise<number> {
  let started = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (started < count && Date.now() < deadline) {
        started++;
        await oneConnection(proxy.proxy.address);
      }
    }),
  );
  return started;
}

async function settledHeapUsed(): Promise<number> {
  for (let round = 0; round < 4; round++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return process.memoryUsage().heapUsed;
}

describe('connection churn through the proxy', () => {
  it(`${CONNECTIONS} connections opened and closed leave the heap within ${ALLOWED_GROWTH * 100}%`, async (t) => {
    const deadline = Date.now() + BUDGET_MS;
    // Warm-up: code paths compiled, metric series for this client created, pools at their working size.
    await churn(WARM_UP, deadline);
    const heapBefore = await settledHeapUsed();
    const rssBefore = process.memoryUsage().rss;
    const started = Date.now();
    const done = await churn(CONNECTIONS, deadline);
    assert.equal(done, CONNECTIONS, `only ${done} connections within the time budget`);
    const elapsed = Date.now() - started;
    const closedBefore = Date.now();
    while (proxy.proxy.activeConnections > 0 && Date.now() - closedBefore < 10_000) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(proxy.proxy.activeConnections, 0);
    const heapAfter = await settledHeapUsed();
    const rssAfter = process.memoryUsage().rss;
    const opened = await proxy.metric('neo4j_proxy_client_connections_opened_total');
    assert.ok(opened >= CONNECTIONS + WARM_UP, `${opened} connections counted`);
    t.diagnostic(
      `${CONNECTIONS} connections in ${elapsed} ms; heap used ${(heapBefore / 1e6).toFixed(1)} -> ${(heapAfter / 1e6).toFixed(1)} MB; rss ${(rssBefore / 1e6).toFixed(1)} -> ${(rssAfter / 1e6).toFixed(1)} MB`,
    );
    assert.ok(
      heapAfter <= heapBefore * (1 + ALLOWED_GROWTH),
      `heap grew from ${heapBefore} to ${heapAfter} bytes over ${CONNECTIONS} connections`,
    );
  });
});
