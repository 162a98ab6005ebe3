/**
 * How a CLI command reaches the sidecar that the same configuration and environment run: its HTTP
 * address (a wildcard listen address is reached on loopback) and, when http.adminTokenFile is set,
 * the bearer token the guarded endpoints take. So `neo4j-pool-sidecar queries` (and every command
 * that talks to a running sidecar) needs no flags beyond what the sidecar was started with.
 */
import { readAdminToken } from './admin-token.ts';
import type { SidecarConfig } from './schema.ts';

export function sidecarUrl(config: SidecarConfig): string {
  const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? '127.0.0.1' : config.http.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.http.port}`;
}

/** Headers for a request to a guarded endpoint: the bearer token when one is configured. */
export function sidecarRequestHeaders(config: SidecarConfig): Record<string, string> {
  const tokenFile = config.http.adminTokenFile;
  return tokenFile === undefined ? {} : { authorization: `Bearer ${readAdminToken(tokenFile)}` };
}
