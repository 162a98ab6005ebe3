/**
 * Bolt user agents folded into bounded label values, shared by the proxy (HELLO's user_agent) and
 * the server census (dbms.listConnections), so both label the same clients the same way. It sits with
 * the metrics, not the Bolt codec, since bounding label values is what it is for and the census must
 * not reach into the proxy for it.
 *
 * Driver names as they appear before the "/" of a Bolt user_agent. A fixed list, so that a metric label
 * built from it has a bounded set of values whatever clients send.
 */
export const KNOWN_DRIVER_NAMES = [
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

export type KnownDriverName = (typeof KNOWN_DRIVER_NAMES)[number];

const knownNames: ReadonlySet<string> = new Set(KNOWN_DRIVER_NAMES);
/** Only this much of the agent is looked at: a name and a version never need more. */
const MAX_INSPECTED_LENGTH = 64;
const MAJOR_VERSION = /^v?(\d{1,3})(?!\d)/i;

/**
 * 'neo4j-python/5.28.1 Python/3.11' → 'neo4j-python/5'; a known name with no readable major version →
 * the name alone; anything else → 'other'.
 */
export function userAgentFamily(userAgent: string | null | undefined): string {
  if (typeof userAgent !== 'string') return 'other';
  const product = userAgent.slice(0, MAX_INSPECTED_LENGTH).trimStart().split(/\s/, 1)[0] ?? '';
  const slash = product.indexOf('/');
  const name = (slash < 0 ? product : product.slice(0, slash)).toLowerCase();
  if (!knownNames.has(name)) return 'other';
  const major = slash < 0 ? undefined : MAJOR_VERSION.exec(product.slice(slash + 1))?.[1];
  return major === undefined ? name : `${name}/${Number(major)}`;
}
