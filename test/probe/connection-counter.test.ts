/**
 * The census's unauthenticated counter read against the real server: plain, over TLS (bolt+s with a
 * CA file, bolt+ssc), and, with a stand-in server for what Neo4j 5.26 cannot be made to do, a server
 * that speaks no Bolt 5.1+.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import neo4j from 'neo4j-driver';
import { boltEndpoint, readConnectionCounter } from '../../src/probe/connection-counter.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { startTlsTerminator, type TlsTerminator } from '../support/tls-terminator.ts';

const OPTIONS = { userAgent: 'neo4j-pool-sidecar/0.0.0-test', timeoutMs: 5000 };

let server: TestNeo4j;
let terminator: TlsTerminator;

before(async () => {
  server = await sharedNeo4j();
  terminator = await startTlsTerminator(server.uri);
});
after(async () => {
  await terminator.close();
  await releaseSharedNeo4j();
});

describe('reading the server connection-id counter without logging in', () => {
  it("returns the server's current connection id: above every connection opened before, below every one after", async () => {
    const driver = neo4j.driver(server.uri, neo4j.auth.basic(server.username, server.password));
    try {
      const before = await readConnectionCounter(boltEndpoint(server.uri), OPTIONS);
      const { records } = await driver.executeQuery(
        'CALL dbms.listConnections() YIELD connectionId, userAgent RETURN connectionId, userAgent',
        {},
        { database: 'system' },
      );
      const after = await readConnectionCounter(boltEndpoint(server.uri), OPTIONS);
      assert.ok(before !== undefined && after !== undefined);
      const ids = records.map((record) => Number(String(record.get('connectionId')).replace(/^\D+-/, '')));
      // The driver's connection opened between the two reads.
      assert.ok(
        ids.some((id) => id > before && id < after),
        `a connection between ${before} and ${after}: ${ids}`,
      );
      // The counter's own connection is gone by the time the read returns.
      assert.ok(!records.some((record) => record.get('userAgent') === OPTIONS.userAgent));
    } finally {
      await driver.close();
    }
  });

  it('reads it over TLS: bolt+s verified against a CA file, and bolt+ssc', async () => {
    const secure = await readConnectionCounter(
      boltEndpoint(`bolt+s://localhost:${terminator.port}`, terminator.caFile),
      OPTIONS,
    );
    const selfSigned = await readConnectionCounter(boltEndpoint(`neo4j+ssc://127.0.0.1:${terminator.port}`), OPTIONS);
    assert.ok(secure !== undefined && selfSigned !== undefined && selfSigned > secure);
    // Without the CA file the certificate is not trusted: the read fails rather than going unverified.
    await assert.rejects(readConnectionCounter(boltEndpoint(`bolt+s://localhost:${terminator.port}`), OPTIONS));
  });

  it('returns undefined from a server that speaks no Bolt 5.1+, and rejects when nothing listens', async () => {
    // Stand-in for a pre-5.1 server: it refuses every offered version, as the handshake specifies.
    const old = net.createServer((socket) => socket.once('data', () => socket.end(Buffer.alloc(4))));
    await new Promise<void>((resolve) => old.listen(0, '127.0.0.1', resolve));
    const { port } = old.address() as net.AddressInfo;
    try {
      assert.equal(await readConnectionCounter(boltEndpoint(`bolt://127.0.0.1:${port}`), OPTIONS), undefined);
    } finally {
      await new Promise<void>((resolve) => old.close(() => resolve()));
    }
    await assert.rejects(readConnectionCounter(boltEndpoint(`bolt://127.0.0.1:${port}`), OPTIONS), /ECONNREFUSED/);
  });
});
