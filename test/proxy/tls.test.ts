/**
 * TLS to the upstream: bolt+s/neo4j+s verified against a CA file (and the host name), bolt+ssc
 * accepting any certificate, and a certificate the proxy must not trust reported to the client in
 * Bolt. Neo4j sits behind a test-only TLS terminator with a fresh self-signed certificate, so the
 * shared server can stay plain.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import neo4j from 'neo4j-driver';
import { UPSTREAM_UNAVAILABLE_CODE } from '../../src/proxy/index.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { startTestProxy } from './support.ts';

let server: TestNeo4j;
let terminator: tls.Server;
let tlsPort: number;
let certDir: string;
let caFile: string;

before(async () => {
  server = await sharedNeo4j();
  certDir = mkdtempSync(join(tmpdir(), 'proxy-tls-'));
  caFile = join(certDir, 'cert.pem');
  // A self-signed certificate for the name "localhost" only: 127.0.0.1 must fail host name checks.
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost',
      '-keyout',
      join(certDir, 'key.pem'),
      '-out',
      caFile,
    ],
    { stdio: 'ignore' },
  );
  const neo4jAddress = new URL(server.uri);
  terminator = tls.createServer(
    { key: readFileSync(join(certDir, 'key.pem')), cert: readFileSync(caFile) },
    (secure) => {
      const plain = net.connect(Number(neo4jAddress.port), neo4jAddress.hostname);
      secure.pipe(plain).pipe(secure);
      secure.on('error', () => plain.destroy());
      plain.on('error', () => secure.destroy());
    },
  );
  await new Promise<void>((resolve) => terminator.listen(0, '127.0.0.1', resolve));
  tlsPort = (terminator.address() as net.AddressInfo).port;
});

after(async () => {
  await new Promise<void>((resolve) => terminator.close(() => resolve()));
  rmSync(certDir, { recursive: true, force: true });
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
