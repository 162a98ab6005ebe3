/**
 * A checkout for a client whose own login Neo4j already verified (transaction mode's units, cluster
 * routing's ROUTE and member upstreams): an idle upstream logged in with the same credentials at once,
 * else the full checkout, which logs a new or reused upstream in with those credentials on its server.
 */
import type { Login } from './connection-key.ts';
import type { CheckoutOptions, Lent, Refused, UpstreamPool, UpstreamSpec } from './pool.ts';

/** The client's login as Neo4j verified it: the LOGON to repeat on another upstream (null before Bolt 5.1). */
export interface VerifiedLogin {
  readonly login: Login;
  readonly logon: Buffer | null;
}

export function checkoutVerified(
  pool: UpstreamPool,
  spec: UpstreamSpec,
  verified: VerifiedLogin,
  options: CheckoutOptions,
): Promise<Lent | Refused> {
  // An idle upstream already logged in as this client is lent with no round trip and no async checkout.
  const idle = pool.lendIdleVerified(spec, verified.login);
  if (idle !== null) return Promise.resolve(idle);
  const checkoutOptions = { ...options, verifiedLogin: true };
  return verified.logon === null
    ? pool.checkoutForHello(spec, verified.login, checkoutOptions)
    : pool.checkoutForLogon(spec, verified.login, verified.logon, null, checkoutOptions);
}
