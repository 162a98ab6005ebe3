/**
 * A test-only TLS terminator in front of a plain Neo4j, with a fresh self-signed certificate for the
 * name "localhost" only (so 127.0.0.1 fails host name checks): TLS paths are tested while the
 * shared server stays plain.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';

export interface TlsTerminator {
  readonly port: number;
  /** PEM of the certificate, to trust it as a CA. */
  readonly caFile: string;
  close(): Promise<void>;
}

export async function startTlsTerminator(plainUri: string): Promise<TlsTerminator> {
  const certDir = mkdtempSync(join(tmpdir(), 'tls-terminator-'));
  const caFile = join(certDir, 'cert.pem');
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
  const address = new URL(plainUri);
  const server = tls.createServer(
    { key: readFileSync(join(certDir, 'key.pem')), cert: readFileSync(caFile) },
    (secure) => {
      const plain = net.connect(Number(address.port), address.hostname);
      secure.pipe(plain).pipe(secure);
      secure.on('error', () => plain.destroy());
      plain.on('error', () => secure.destroy());
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    caFile,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(certDir, { recursive: true, force: true });
    },
  };
}
