/**
 * TLS to the upstream: bolt+s/neo4j+s verified against a CA file (and the host name), bolt+ssc
 * accepting any certificate, and a certificate the proxy must not trust reported to the client in
 * Bolt. Neo4j sits behind a test-only TLS terminator with a fresh self-signed certificate, so the
 * shared server can stay plain.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import neo4j from 'neo4j-driver';
import { UPSTREAM_UNAVAILABLE_CODE } from '../../src/proxy/index.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { startTlsTerminator, type TlsTerminator } from '../support/tls-terminator.ts';
import { startTestProxy } from './support.ts';

let server: TestNeo4j;
let terminator: TlsTerminator;
let tlsPort: number;
let caFile: string;

before(async () => {
  server = await sharedNeo4j();
  terminator = await startTlsTerminator(server.uri);
  tlsPort = terminator.port;
  caFile = terminator.caFile;
});

after(async () => {
  await terminator.close();
  await releaseSharedNeo4j();
});

async function queryThrough(uri: string, upstreamUri: string, tlsCaFile?: string) {
  const proxy = await startTestProxy(upstreamUri, tlsCaFile ? { tlsCaFile } : {});
  const driver = neo4j.driver(
    uri.replace('PROXY', proxy.proxy.address),
    neo4j.auth.basic(server.username, server.password),
    {
      maxTransactionRetryTime: 0,
      logging: { level: 'error', logger: () => {} },
    },
  );
  try {
    const { records, summary } = await driver.executeQuery('RETURN 1 AS one');
    return { one: records[0]?.get('one').toNumber(), address: summary.server.address, proxy };
  } finally {
    await driver.close();
    await proxy.stop();
  }
}

describe('TLS to the upstream', () => {
  it('bolt+s:// verified against neo4j.tlsCaFile', async () => {
    const { one, proxy } = await queryThrough('bolt://PROXY', `bolt+s://localhost:${tlsPort}`, caFile);
    assert.equal(one, 1);
    assert.ok((await proxy.metric('neo4j_proxy_upstream_connect_seconds_count')) >= 1);
  });

  it('neo4j+s:// with a neo4j:// client: routing still points at the proxy', async () => {
    const { one, address, proxy } = await queryThrough('neo4j://PROXY', `neo4j+s://localhost:${tlsPort}`, caFile);
    assert.equal(one, 1);
    assert.equal(address, proxy.proxy.advertisedAddress);
  });

  it('bolt+ssc:// accepts the self-signed certificate without a CA file', async () => {
    const { one } = await queryThrough('bolt://PROXY', `bolt+ssc://127.0.0.1:${tlsPort}`);
    assert.equal(one, 1);
  });

  for (const [name, upstreamUri, ca, reason] of [
    ['an untrusted certificate', 'bolt+s://localhost:PORT', undefined, /self-signed certificate/],
    ['a certificate for another host name', 'bolt+s://127.0.0.1:PORT', 'CA', /does not match certificate's altnames/],
  ] as const) {
    it(`refuses ${name}, and the client reads why`, async () => {
      const proxy = await startTestProxy(upstreamUri.replace('PORT', String(tlsPort)), ca ? { tlsCaFile: caFile } : {});
      const driver = neo4j.driver(proxy.boltUri, neo4j.auth.basic(server.username, server.password), {
        maxTransactionRetryTime: 0,
        logging: { level: 'error', logger: () => {} },
      });
      try {
        await assert.rejects(driver.executeQuery('RETURN 1'), (error: Error & { code?: string }) => {
          assert.equal(error.code, UPSTREAM_UNAVAILABLE_CODE);
          assert.match(error.message, /could not reach Neo4j/);
          assert.match(error.message, reason);
          return true;
        });
        assert.ok(
          (await proxy.metric('neo4j_proxy_connections_rejected_total', { reason: 'upstream_unavailable' })) >= 1,
        );
      } finally {
        await driver.close();
        await proxy.stop();
      }
    });
  }
});
