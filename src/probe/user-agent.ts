/**
 * Bolt user agents folded into a bounded set of families for metric labels: `neo4j-python/5`,
 * `neo4j-javascript/6`, ... or `other`. Same format as the proxy's families, so the census and the
 * proxy label the same clients the same way.
 */

const KNOWN_AGENTS = [
  'neo4j-python',
  'neo4j-javascript',
  'neo4j-java',
  'neo4j-go',
  'neo4j-dotnet',
  'neo4j-jdbc',
  'neo4j-cypher-shell',
  'neo4j-browser',
  'neo4j-pool-sidecar',
  'neo4rs',
] as const;

const known: ReadonlySet<string> = new Set(KNOWN_AGENTS);
const MAX_INSPECTED_LENGTH = 64;
const MAJOR_VERSION = /^v?(\d{1,3})(?!\d)/i;

/** 'neo4j-python/5.28.1 Python/3.11' → 'neo4j-python/5'; an unknown product → 'other'. */
export function userAgentFamily(userAgent: string | null | undefined): string {
  if (typeof userAgent !== 'string') return 'other';
  const product = userAgent.slice(0, MAX_INSPECTED_LENGTH).trimStart().split(/\s/, 1)[0] ?? '';
  const slash = product.indexOf('/');
  const name = (slash < 0 ? product : product.slice(0, slash)).toLowerCase();
  if (!known.has(name)) return 'other';
  const major = slash < 0 ? undefined : MAJOR_VERSION.exec(product.slice(slash + 1))?.[1];
  return major === undefined ? name : `${name}/${Number(major)}`;
}
