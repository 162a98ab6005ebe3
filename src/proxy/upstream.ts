/**
 * The one Neo4j server the proxy forwards to, taken from the sidecar's neo4j.uri: where it is and how
 * to reach it (plain TCP, or TLS with the system CAs, a CA file, or no verification for +ssc).
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

export type UpstreamTls =
  | { readonly mode: 'off' }
  /** bolt+s / neo4j+s: verified against the system CAs, or against `ca` when a CA file was given. */
  | { readonly mode: 'verify'; readonly ca?: Buffer }
  /** bolt+ssc / neo4j+ssc: encrypted, any certificate accepted (as the drivers do for +ssc). */
  | { readonly mode: 'trust-any' };

export interface UpstreamTarget {
  readonly host: string;
  readonly port: number;
  readonly tls: UpstreamTls;
  /** The URI it came from, for logs and /status (URIs carry no credentials here). */
  readonly uri: string;
}

export interface UpstreamOptions {
  /** PEM file of CAs for +s URIs (neo4j.tlsCaFile); read once, here, so a bad path fails at start-up. */
  readonly tlsCaFile?: string | undefined;
}

const DEFAULT_BOLT_PORT = 7687;
const URI_PATTERN = /^(bolt|neo4j)(\+s|\+ssc)?:\/\//;

export function upstreamFromUri(uri: string, options: UpstreamOptions = {}): UpstreamTarget {
  const scheme = URI_PATTERN.exec(uri);
  if (!scheme) throw new Error(`proxy upstream must be a bolt://, bolt+s://, neo4j:// or neo4j+s:// URI, not ${uri}`);
  const url = new URL(uri);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw new Error(`proxy upstream URI has no host: ${uri}`);
  const port = url.port ? Number(url.port) : DEFAULT_BOLT_PORT;
  let upstreamTls: UpstreamTls = { mode: 'off' };
  if (scheme[2] === '+ssc') upstreamTls = { mode: 'trust-any' };
  else if (scheme[2] === '+s') {
    upstreamTls = options.tlsCaFile ? { mode: 'verify', ca: readFileSync(options.tlsCaFile) } : { mode: 'verify' };
  }
  return { host, port, tls: upstreamTls, uri };
}

/** `host:port`, bracketing IPv6 literals. */
export function formatAddress(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Opens one upstream connection. The socket is returned at once: writes before it is connected are
 * queued by Node, so the client's handshake can be forwarded while TCP and TLS are still being set up.
 * `onConnected` fires after TCP (plain) or after the TLS handshake and certificate check (+s, +ssc).
 */
export function connectUpstream(target: UpstreamTarget, onConnected: () => void): net.Socket {
  if (target.tls.mode === 'off') {
    const socket = net.connect({ host: target.host, port: target.port });
    socket.once('connect', onConnected);
    return socket;
  }
  const socket = tls.connect({
    host: target.host,
    port: target.port,
    // SNI takes host names only; Node warns when given an IP address.
    ...(net.isIP(target.host) ? {} : { servername: target.host }),
    ...(target.tls.mode === 'verify' && target.tls.ca ? { ca: target.tls.ca } : {}),
    rejectUnauthorized: target.tls.mode === 'verify',
  });
  socket.once('secureConnect', onConnected);
  return socket;
}
