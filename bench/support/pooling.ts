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
  /** The pooling modes `proxy.pooling.mode` accepts besides off (none: pooling is not built in). */
  modes: Array<Exclude<PoolingMode, 'off'>>;
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
  const modes = (['session', 'transaction'] as const).filter((mode) => proxy.safeParse({ pooling: { mode } }).success);
  const authCache = modes.length > 0 && proxy.safeParse({ pooling: { mode: modes[0], authCacheSeconds: 5 } }).success;
  if (modes.length === 0) return { modes, authCache };
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
  if (support.modes.length === 0) return {};
  const env: Record<string, string> = { SIDECAR__PROXY__POOLING__MODE: setup.mode };
  if (support.authCache) env.SIDECAR__PROXY__POOLING__AUTH_CACHE_SECONDS = String(setup.authCacheSeconds);
  if (maxUpstreams !== undefined) {
    for (const option of [support.maxUpstreamsOption, support.maxUpstreamsPerKeyOption]) {
      if (option) env[`SIDECAR__PROXY__POOLING__${envName(option)}`] = String(maxUpstreams);
    }
  }
  return env;
}

/**
 * The setups a section compares: `off` always, then each mode the sidecar accepts, and with
 * `withAuthCache` the first of them (session, the default, when there) with the login cache on.
 */
export function proxySetups(support: PoolingSupport, options: { withAuthCache: boolean }): ProxySetup[] {
  const setups: ProxySetup[] = [{ label: 'proxy, off', mode: 'off', authCacheSeconds: 0 }];
  for (const mode of support.modes) setups.push({ label: `proxy, ${mode}`, mode, authCacheSeconds: 0 });
  const cachedMode = support.modes[0];
  if (options.withAuthCache && support.authCache && cachedMode) {
    setups.push({
      label: `proxy, ${cachedMode}, auth cache ${AUTH_CACHE_SECONDS} s`,
      mode: cachedMode,
      authCacheSeconds: AUTH_CACHE_SECONDS,
    });
  }
  return setups;
}

/** A note for sections whose columns depend on the modes the sidecar has at this commit. */
export function missingModesNote(support: PoolingSupport): string | undefined {
  const missing = (['session', 'transaction'] as const).filter((mode) => !support.modes.includes(mode));
  if (missing.length === 0) return undefined;
  return (
    `Not measured: proxy.pooling.mode ${missing.join(', ')} (the sidecar's config schema at this commit does not ` +
    'accept it); those rows appear when the proxy has it.'
  );
}
