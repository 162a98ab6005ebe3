/**
 * Bolt over TLS on the benchmark's local Neo4j, for the remote setting: a self-signed certificate
 * made at bench time with openssl, and Neo4j's bolt SSL policy pointed at it with TLS optional, so
 * the same port serves `bolt://` (every other section) and `bolt+ssc://` (the remote section).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** Makes a fresh key and certificate and answers the neo4j.conf lines that serve them on bolt. */
export async function boltTlsConfig(): Promise<{ dir: string; extraConfig: Record<string, string> }> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-neo4j-tls-'));
  // Neo4j's policy checks these exist even when clients are not asked for certificates.
  await mkdir(join(dir, 'trusted'));
  await mkdir(join(dir, 'revoked'));
  // biome-ignore format: flags and their values read best as pairs on a line
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', join(dir, 'private.key'), '-out', join(dir, 'public.crt'),
  ]);
  return {
    dir,
    extraConfig: {
      'dbms.ssl.policy.bolt.enabled': 'true',
      'dbms.ssl.policy.bolt.base_directory': dir,
      'dbms.ssl.policy.bolt.private_key': 'private.key',
      'dbms.ssl.policy.bolt.public_certificate': 'public.crt',
      'dbms.ssl.policy.bolt.client_auth': 'NONE',
      'server.bolt.tls_level': 'OPTIONAL',
    },
  };
}
