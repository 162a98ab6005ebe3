/**
 * Who may call which HTTP endpoint. The port is opened to the pod network for Prometheus, so reaching
 * /metrics must not also let anyone change what every worker gets:
 *
 *   open      /metrics, /healthz, /readyz, /openapi.json   anyone who can reach the port
 *   operator  /status, /queries (query shapes)             anyone, unless a token is configured
 *   admin     POST /queries/reset (and every verb that     loopback only, unless a token is
 *             changes behaviour)                           configured; then the token, from anywhere
 *
 * With http.adminTokenFile set, operator and admin endpoints take `Authorization: Bearer <token>`,
 * compared in constant time; pg_stat_statements likewise shows query text to privileged roles only.
 */
import { timingSafeEqual } from 'node:crypto';
import type { AdminTokenFile } from '../config/index.ts';

export type AccessLevel = 'open' | 'operator' | 'admin';

export type AccessDecision =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly statusCode: 401 | 403; readonly message: string };

const ALLOWED: AccessDecision = { allowed: true };

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6 (how a dual-stack listener reports IPv4 peers). */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const plain = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  return plain === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(plain);
}

export class AdminAccess {
  readonly #token: AdminTokenFile | null;

  constructor(token: AdminTokenFile | null) {
    this.#token = token;
  }

  get tokenConfigured(): boolean {
    return this.#token !== null;
  }

  decide(level: AccessLevel, remoteAddress: string | undefined, authorization: string | undefined): AccessDecision {
    if (level === 'open') return ALLOWED;
    if (this.#token === null) {
      if (level === 'operator' || isLoopback(remoteAddress)) return ALLOWED;
      return {
        allowed: false,
        statusCode: 403,
        message:
          'admin endpoints answer only on loopback unless http.adminTokenFile is configured (then with Authorization: Bearer <token>)',
      };
    }
    const presented = bearerToken(authorization);
    if (presented === null) {
      return { allowed: false, statusCode: 401, message: 'this endpoint needs Authorization: Bearer <token>' };
    }
    if (!sameToken(presented, this.#token.token)) {
      return { allowed: false, statusCode: 401, message: 'the bearer token is not the one configured' };
    }
    return ALLOWED;
  }
}

function bearerToken(authorization: string | undefined): string | null {
  const match = authorization === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  return match?.[1] ?? null;
}

/** Constant-time over the configured token's length, so timing says nothing about how close a guess was. */
function sameToken(presented: string, expected: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
