/**
 * The proxy's upstream pooling as the benchmark configures it: which `proxy.pooling.*` options the
 * sidecar at this commit accepts (read from its config schema, so the pooled columns appear as soon
 * as the code has them, with no flag to remember), and the environment that selects a setup.
 */
import { z } from 'zod';
import { configSchema } from '../../src/config/schema.ts';

export type PoolingMode = 'off' | 'session' | 'transaction';

export interface ProxySetup {
  /** Column and variant label, e.g. `proxy, session`. */
  label: string;
  mode: PoolingMode;
  authCacheSeconds: number;
}

export interface PoolingSupport {
  /** `proxy.pooling.mode` is accepted. */
  modes: boolean;
  /** `proxy.pooling.authCacheSeconds` is accepted. */
  authCache: boolean;
  /** The option that caps upstreams in total (its name as the schema spells it), when there is one. */
  maxUpstreamsOption?: string;
  /** The option that caps upstreams per pool key (one login, one Bolt version), when there is one. */
  maxUpstreamsPerKeyOption?: string;
}

/** A login-cache window long enough to cover a whole benchmark section. */
export const AUTH_CACHE_SECONDS = 300;

interface JsonSchemaNode {
  properties?: Record<string, JsonSchemaNode>;
}

export function poolingSupport(): PoolingSupport {
  const proxy = configSchema.shape.proxy;
  const modes = proxy.safeParse({ pooling: { mode: 'transaction' } }).success;
  const authCache = modes && proxy.safeParse({ pooling: { mode: 'session', authCacheSeconds: 5 } }).success;
  if (!modes) return { modes, authCache };
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchemaNode;
  const options = Object.keys(schema.properties?.proxy?.properties?.pooling?.properties ?? {});
  const limits = options.filter((name) => /^max/i.test(name) && /upstream|size|total|connections/i.test(name));
  const maxUpstreamsOption = limits.find((name) => !/per|idle|life|wait/i.test(name));
  const maxUpstreamsPerKeyOption = limits.find((name) => /per.?key/i.test(name));
  return {
    modes,
    authCache,
    ...(maxUpstreamsOption ? { maxUpstreamsOption } : {}),
    ...(maxUpstreamsPerKeyOption ? { maxUpstreamsPerKeyOption } : {}),
  };
}

/** `maxUpstreams` -> `MAX_UPSTREAMS`, as the config loader reads `SIDECAR__SECTION__OPTION`. */
function envName(option: string): string {
  return option.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/**
 * The sidecar's environment for a setup ({} for `off` when pooling is not built in: today's proxy).
 * `maxUpstreams` caps upstreams in total and per key alike, since every benchmark client logs in
 * as the same user: one key.
 */
export function poolingEnv(
  setup: Pick<ProxySetup, 'mode' | 'authCacheSeconds'>,
  support: PoolingSupport,
  maxUpstreams?: number,
): Record<string, string> {
  if (!support.modes) return {};
  const env: Record<string, string> = { SIDECAR__PROXY__POOLING__MODE: setup.mode };
  if (support.authCache) env.SIDECAR__PROXY__POOLING__AUTH_CACHE_SECONDS = String(setup.authCacheSeconds);
  if (maxUpstreams !== undefined) {
    for (const option of [support.maxUpstreamsOption, support.maxUpstreamsPerKeyOption]) {
      if (option) env[`SIDECAR__PROXY__POOLING__${envName(option)}`] = String(maxUpstreams);
    }
  }
  return env;
}

/** The setups a section compares: `off` always, the modes and the login cache once the sidecar has them. */
export function proxySetups(support: PoolingSupport, options: { withAuthCache: boolean }): ProxySetup[] {
  const setups: ProxySetup[] = [{ label: 'proxy, off', mode: 'off', authCacheSeconds: 0 }];
  if (!support.modes) return setups;
  setups.push({ label: 'proxy, session', mode: 'session', authCacheSeconds: 0 });
  setups.push({ label: 'proxy, transaction', mode: 'transaction', authCacheSeconds: 0 });
  if (options.withAuthCache && support.authCache) {
    setups.push({
      label: `proxy, session, auth cache ${AUTH_CACHE_SECONDS} s`,
      mode: 'session',
      authCacheSeconds: AUTH_CACHE_SECONDS,
    });
  }
  return setups;
}
