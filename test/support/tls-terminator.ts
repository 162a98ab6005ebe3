/**
 * A test-only TLS terminator in front of a plain Bolt server (the shared Neo4j, a scripted router), so
 * TLS paths are tested while the servers stay plain. By default it has a fresh self-signed certificate
 * for the name "localhost" only (so 127.0.0.1 fails host name checks); with a test CA it carries a
 * certificate that CA issued for the names asked for, as each member of a cluster has its own. It
 * counts what reaches it: handshakes completed, connections that opened with plaintext instead of a
 * TLS record, and the decrypted bytes it passed on.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';

/** A TLS record's first byte for a handshake message: every TLS client opens with one. */
const TLS_HANDSHAKE_RECORD = 0x16;

export interface TerminatorCounts {
  /** Connections whose TLS handshake completed. */
  readonly secured: number;
  /** Connections whose first byte was not a TLS handshake record: plaintext sent to a TLS port. */
  readonly plaintext: number;
  /** Decrypted bytes passed on to the server behind. */
  readonly bytesForwarded: number;
}

export interface TlsTerminator {
  readonly port: number;
  /** PEM to trust: the certificate itself when self-signed, else the issuing test CA's. */
  readonly caFile: string;
  readonly counts: TerminatorCounts;
  close(): Promise<void>;
}

/** A certificate authority of the test's own, issuing certificates for whatever names a test needs. */
export interface TestCertificateAuthority {
  /** PEM of the CA certificate, for neo4j.tlsCaFile. */
  readonly caFile: string;
  /** A key and certificate for `subjectAltName` (OpenSSL syntax: "DNS:localhost", "IP:127.0.0.1"). */
  issue(subjectAltName: string): { key: Buffer; cert: Buffer };
  /** Removes its files. */
  close(): void;
}

/** EC keys: generated in milliseconds, unlike RSA's. */
const KEY_OPTIONS = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1'];

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}

export function createTestCertificateAuthority(): TestCertificateAuthority {
  const dir = mkdtempSync(join(tmpdir(), 'test-ca-'));
  const caFile = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca-key.pem');
  openssl([
    'req',
    '-x509',
    ...KEY_OPTIONS,
    '-subj',
    '/CN=neo4j-pool-sidecar test CA',
    '-keyout',
    caKey,
    '-out',
    caFile,
  ]);
  let issued = 0;
  return {
    caFile,
    issue(subjectAltName) {
      issued++;
      const keyFile = join(dir, `${issued}-key.pem`);
      const certFile = join(dir, `${issued}.pem`);
      openssl([
        'req',
        '-x509',
        '-CA',
        caFile,
        '-CAkey',
        caKey,
        ...KEY_OPTIONS,
        '-subj',
        `/CN=member ${issued}`,
        '-addext',
        `subjectAltName=${subjectAltName}`,
        '-addext',
        'basicConstraints=critical,CA:FALSE',
        '-keyout',
        keyFile,
        '-out',
        certFile,
      ]);
      return { key: readFileSync(keyFile), cert: readFileSync(certFile) };
    },
    close() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function selfSignedLocalhost(dir: string): { key: Buffer; cert: Buffer; caFile: string } {
  const caFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  openssl([
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
    keyFile,
    '-out',
    caFile,
  ]);
  return { key: readFileSync(keyFile), cert: readFileSync(caFile), caFile };
}

export interface TlsTerminatorOptions {
  /** Issue the certificate from this CA for `subjectAltName` instead of a self-signed one for localhost. */
  readonly ca?: TestCertificateAuthority;
  /** Default "DNS:localhost". */
  readonly subjectAltName?: string;
}

export async function startTlsTerminator(plainUri: string, options: TlsTerminatorOptions = {}): Promise<TlsTerminator> {
  const certDir = mkdtempSync(join(tmpdir(), 'tls-terminator-'));
  const { key, cert, caFile } =
    options.ca === undefined
      ? selfSignedLocalhost(certDir)
      : { ...options.ca.issue(options.subjectAltName ?? 'DNS:localhost'), caFile: options.ca.caFile };
  const counts = { secured: 0, plaintext: 0, bytesForwarded: 0 };
  const address = new URL(plainUri);
  const open = new Set<net.Socket>();
  const track = (socket: net.Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const secureServer = tls.createServer({ key, cert }, (secure) => {
    counts.secured++;
    const plain = net.connect(Number(address.port), address.hostname);
    track(secure);
    track(plain);
    secure.on('data', (data: Buffer) => {
      counts.bytesForwarded += data.length;
    });
    secure.pipe(plain).pipe(secure);
    // One side gone (closed, reset, or destroyed by a client that stopped) takes the other with it.
    secure.once('close', () => plain.destroy());
    plain.once('close', () => secure.destroy());
  });
  // Plain TCP first, to see the first byte before TLS reads it: a client that skipped TLS is counted.
  const server = net.createServer((socket) => {
    track(socket);
    socket.once('data', (first: Buffer) => {
      if (first[0] !== TLS_HANDSHAKE_RECORD) {
        counts.plaintext++;
        socket.destroy();
        return;
      }
      socket.pause();
      socket.unshift(first);
      secureServer.emit('connection', socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    caFile,
    get counts() {
      return { ...counts };
    },
    async close() {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(certDir, { recursive: true, force: true });
    },
  };
}
