/**
 * Cluster routing over TLS (issue 19): with a neo4j+s:// upstream each member's certificate is checked
 * under that member's own name from the routing table, not the seed's. Every member is the real Neo4j
 * behind a TLS terminator of its own, with a certificate from the test's CA for one name; the scripted
 * router sits behind one too (for "localhost", the seed's name). Members named localhost:<port> and
 * 127.0.0.1:<port> serve reads and writes when their certificates carry exactly that name; a member
 * whose certificate names another host is refused (a retryable error, a failover counted, the reason
 * in the proxy's log) and gets no byte of Bolt, plain or encrypted; neo4j+ssc:// takes any certificate.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import neo4j, { type Driver } from 'neo4j-driver';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { type ScriptedRouter, type ScriptedRoutingTable, startScriptedRouter } from '../support/scripted-bolt.ts';
import {
  createTestCertificateAuthority,
  startTlsTerminator,
  type TerminatorCounts,
  type TestCertificateAuthority,
  type TlsTerminator,
} from '../support/tls-terminator.ts';
import { startTestProxy, type TestProxy } from './support.ts';

let server: TestNeo4j;
let ca: TestCertificateAuthority;
let router: ScriptedRouter;
/** The scripted router behind TLS, certificate for DNS:localhost: the seed is neo4j+s://localhost:<port>. */
let routerTls: TlsTerminator;
/** Neo4j behind a certificate for DNS:localhost only. */
let namedLocalhost: TlsTerminator;
/** Neo4j behind a certificate for IP:127.0.0.1 only. */
let named127: TlsTerminator;
/** Neo4j behind a certificate for DNS:elsewhere.example only: no name the table uses. */
let namedElsewhere: TlsTerminator;

before(async () => {
  server = await sharedNeo4j();
  ca = createTestCertificateAuthority();
  router = await startScriptedRouter({
    username: server.username,
    password: server.password,
    table: { ttlSeconds: 300, routers: [], writers: [], readers: [] },
  });
  routerTls = await startTlsTerminator(router.uri, { ca, subjectAltName: 'DNS:localhost' });
  namedLocalhost = await startTlsTerminator(server.uri, { ca, subjectAltName: 'DNS:localhost' });
  named127 = await startTlsTerminator(server.uri, { ca, subjectAltName: 'IP:127.0.0.1' });
  namedElsewhere = await startTlsTerminator(server.uri, { ca, subjectAltName: 'DNS:elsewhere.example' });
});

after(async () => {
  for (const terminator of [routerTls, namedLocalhost, named127, namedElsewhere]) await terminator?.close();
  await router?.close();
  ca?.close();
  await releaseSharedNeo4j();
});

const routerAddress = () => `localhost:${routerTls.port}`;

function table(writers: string[], readers: string[]): ScriptedRoutingTable {
  return { ttlSeconds: 300, routers: [routerAddress()], writers, readers };
}

/**
 * A proxy routing in transaction mode. Writes with no writer reachable are held for holdTimeoutMs: short
 * here, so a member wrongly refused fails its test in seconds rather than after the 25 s default.
 */
async function routingProxy(upstreamUri: string, tlsCaFile?: string, holdTimeoutMs = 2000): Promise<TestProxy> {
  return startTestProxy(upstreamUri, {
    ...(tlsCaFile === undefined ? {} : { tlsCaFile }),
    pooling: { mode: 'transaction', holdTimeoutMs },
  });
}

function driverFor(proxy: TestProxy): Driver {
  return neo4j.driver(proxy.routingUri, neo4j.auth.basic(server.username, server.password), {
    maxTransactionRetryTime: 0,
    logging: { level: 'error', logger: () => {} },
  });
}

/**
 * A managed write transaction (BEGIN without mode r), then in the same session a read by auto-commit
 * RUN (mode r) and one by a managed read transaction (BEGIN mode r), both finding the write through
 * the session's bookmark. Returns what each read counted.
 */
async function writeThenRead(driver: Driver): Promise<{ autoCommit: number; managed: number }> {
  const id = randomUUID();
  const session = driver.session({ defaultAccessMode: neo4j.session.READ });
  try {
    await session.executeWrite((tx) => tx.run('CREATE (:ClusterTlsWrite {id: $id})', { id }));
    const count = 'MATCH (w:ClusterTlsWrite {id: $id}) RETURN count(w) AS n';
    const autoCommit = (await session.run(count, { id })).records[0]?.get('n').toNumber();
    const managed = (await session.executeRead((tx) => tx.run(count, { id }))).records[0]?.get('n').toNumber();
    await session.executeWrite((tx) => tx.run('MATCH (w:ClusterTlsWrite {id: $id}) DELETE w', { id }));
    return { autoCommit, managed };
  } finally {
    await session.close();
  }
}

function delta(after: TerminatorCounts, before: TerminatorCounts): TerminatorCounts {
  return {
    secured: after.secured - before.secured,
    plaintext: after.plaintext - before.plaintext,
    bytesForwarded: after.bytesForwarded - before.bytesForwarded,
  };
}

/** What each terminator saw while `run` ran (the proxy stopped in it, so its background retries count too). */
async function countsDuring(
  terminators: Record<string, TlsTerminator>,
  run: () => Promise<void>,
): Promise<Record<string, TerminatorCounts>> {
  const before = Object.fromEntries(Object.entries(terminators).map(([name, t]) => [name, t.counts]));
  await run();
  return Object.fromEntries(
    Object.entries(terminators).map(([name, t]) => [name, delta(t.counts, before[name] as TerminatorCounts)]),
  );
}

/** Each terminator was reached over TLS and passed Bolt on, and none was sent plaintext. */
function assertServedOverTls(counts: Record<string, TerminatorCounts>): void {
  for (const [name, seen] of Object.entries(counts)) {
    assert.ok(seen.secured >= 1 && seen.bytesForwarded > 0, `Bolt reached ${name} over TLS: ${JSON.stringify(seen)}`);
    assert.equal(seen.plaintext, 0, `nothing plain sent to ${name}'s TLS port`);
  }
}

/** A refused member got no Bolt at all: nothing plain, nothing decrypted and passed on. */
function assertNothingReached(counts: Record<string, TerminatorCounts>): void {
  for (const [name, seen] of Object.entries(counts)) {
    assert.deepEqual(
      { plaintext: seen.plaintext, bytesForwarded: seen.bytesForwarded },
      { plaintext: 0, bytesForwarded: 0 },
      `no Bolt byte reached the member behind ${name}`,
    );
  }
}

function assertRetryable(error: Error & { code?: string }): true {
  assert.ok(neo4j.isRetryableError(error), `a retryable error, not ${error.code}: ${error.message}`);
  return true;
}

/** The proxy's log says the member was refused for its certificate's names, not as a silence. */
function assertRefusedForName(proxy: TestProxy): void {
  assert.ok(
    proxy.logs.some((line) => /does not match certificate's altnames/.test(line)),
    'the proxy says why the member was refused',
  );
}

describe('cluster routing over TLS: each member verified under its own name', () => {
  for (const [writerName, readerName] of [
    ['localhost', '127.0.0.1'],
    ['127.0.0.1', 'localhost'],
  ] as const) {
    it(`neo4j+s://: a writer named ${writerName}:<port> and a reader named ${readerName}:<port>, each certificate carrying exactly that name, serve units`, async () => {
      // Each name on the terminator whose certificate carries exactly it.
      const member = (name: string) =>
        name === 'localhost' ? `localhost:${namedLocalhost.port}` : `127.0.0.1:${named127.port}`;
      const memberTls = (address: string) => (address.startsWith('localhost') ? namedLocalhost : named127);
      const writer = member(writerName);
      const reader = member(readerName);
      router.setTable(table([writer], [reader]));
      const terminators = { router: routerTls, [writer]: memberTls(writer), [reader]: memberTls(reader) };
      const counts = await countsDuring(terminators, async () => {
        const proxy = await routingProxy(`neo4j+s://${routerAddress()}`, ca.caFile);
        const driver = driverFor(proxy);
        try {
          assert.deepEqual(await writeThenRead(driver), { autoCommit: 1, managed: 1 });
          assert.equal(await proxy.metric('neo4j_proxy_routing_units_total', { member: writer, access: 'write' }), 2);
          assert.equal(await proxy.metric('neo4j_proxy_routing_units_total', { member: reader, access: 'read' }), 2);
          assert.equal(await proxy.metric('neo4j_proxy_routing_units_total', { member: writer, access: 'read' }), 0);
          assert.equal(await proxy.metric('neo4j_proxy_routing_units_total', { member: reader, access: 'write' }), 0);
          assert.equal(await proxy.metric('neo4j_proxy_routing_failovers_total'), 0);
        } finally {
          await driver.close();
          await proxy.stop();
        }
      });
      assertServedOverTls(counts);
    });
  }

  it('neo4j+s://: readers whose certificates name another host are refused, counted as failed, and sent nothing', async () => {
    // localhost:<port> behind a certificate for elsewhere.example, and 127.0.0.1:<port> behind one for
    // localhost only: the seed's own name (localhost) must not stand in for a member's.
    const wrongReaders = [`localhost:${namedElsewhere.port}`, `127.0.0.1:${namedLocalhost.port}`];
    const writer = `127.0.0.1:${named127.port}`;
    router.setTable(table([writer], wrongReaders));
    const counts = await countsDuring({ 'elsewhere.example': namedElsewhere, localhost: namedLocalhost }, async () => {
      const proxy = await routingProxy(`neo4j+s://${routerAddress()}`, ca.caFile);
      const driver = driverFor(proxy);
      try {
        const session = driver.session({ defaultAccessMode: neo4j.session.READ });
        try {
          await assert.rejects(session.run('RETURN 1'), assertRetryable);
        } finally {
          await session.close();
        }
        assert.ok(
          (await proxy.metric('neo4j_proxy_routing_failovers_total', { role: 'reader' })) >= 2,
          'both readers counted as failed',
        );
        for (const reader of wrongReaders) {
          assert.equal(await proxy.metric('neo4j_proxy_routing_units_total', { member: reader, access: 'read' }), 0);
        }
        assertRefusedForName(proxy);
        // The writer, verified under its own name, still serves.
        const { records } = await driver.executeQuery('CREATE (w:ClusterTlsWrite) DELETE w RETURN 1 AS one');
        assert.equal(records[0]?.get('one').toNumber(), 1);
        assert.equal(await proxy.metric('neo4j_proxy_routing_units_total', { member: writer, access: 'write' }), 1);
      } finally {
        await driver.close();
        await proxy.stop();
      }
    });
    assertNothingReached(counts);
  });

  it('neo4j+s://: a writer whose certificate names another host is refused: writes held within holdTimeoutMs, then a retryable error', async () => {
    const writer = `localhost:${namedElsewhere.port}`;
    const reader = `127.0.0.1:${named127.port}`;
    router.setTable(table([writer], [reader]));
    const counts = await countsDuring({ 'elsewhere.example': namedElsewhere }, async () => {
      const proxy = await routingProxy(`neo4j+s://${routerAddress()}`, ca.caFile, 300);
      const driver = driverFor(proxy);
      try {
        await assert.rejects(driver.executeQuery('CREATE (w:ClusterTlsWrite) DELETE w'), assertRetryable);
        assert.ok((await proxy.metric('neo4j_proxy_routing_failovers_total', { role: 'writer' })) >= 1);
        assert.equal(await proxy.metric('neo4j_proxy_routing_units_total', { member: writer, access: 'write' }), 0);
        assertRefusedForName(proxy);
        // Reads go on on the reader, verified under its own name.
        const { records } = await driver.executeQuery('RETURN 1 AS one', {}, { routing: neo4j.routing.READ });
        assert.equal(records[0]?.get('one').toNumber(), 1);
        assert.equal(await proxy.metric('neo4j_proxy_routing_units_total', { member: reader, access: 'read' }), 1);
      } finally {
        await driver.close();
        await proxy.stop();
      }
    });
    assertNothingReached(counts);
  });

  it('neo4j+ssc://: any certificate is accepted, whatever name it carries and whoever issued it', async () => {
    // No CA file: the test CA is unknown to the proxy, and neither member's certificate carries its name.
    const writer = `localhost:${namedElsewhere.port}`;
    const reader = `127.0.0.1:${namedLocalhost.port}`;
    router.setTable(table([writer], [reader]));
    const terminators = { router: routerTls, [writer]: namedElsewhere, [reader]: namedLocalhost };
    const counts = await countsDuring(terminators, async () => {
      // The seed by address too: the router's certificate names localhost only.
      const proxy = await routingProxy(`neo4j+ssc://127.0.0.1:${routerTls.port}`);
      const driver = driverFor(proxy);
      try {
        assert.deepEqual(await writeThenRead(driver), { autoCommit: 1, managed: 1 });
        assert.equal(await proxy.metric('neo4j_proxy_routing_units_total', { member: writer, access: 'write' }), 2);
        assert.equal(await proxy.metric('neo4j_proxy_routing_units_total', { member: reader, access: 'read' }), 2);
        assert.equal(await proxy.metric('neo4j_proxy_routing_failovers_total'), 0);
      } finally {
        await driver.close();
        await proxy.stop();
      }
    });
    assertServedOverTls(counts);
  });
});
