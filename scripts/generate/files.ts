/** What every generator module returns: files by path relative to the repository root. */
import { join } from 'node:path';

export interface GeneratedFile {
  path: string;
  content: string;
}

/** The Helm chart's directory: a chart cannot read files outside it, so it gets its own copies. */
export const CHART_PATH = join('helm', 'neo4j-pool-sidecar');

export function jsonFile(path: string, value: unknown): GeneratedFile {
  return { path, content: `${JSON.stringify(value, null, 2)}\n` };
}
