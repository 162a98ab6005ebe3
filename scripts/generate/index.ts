/**
 * Writes the files generated from code, each by its own module: the Grafana dashboards
 * (dashboards/), the chart's alert definitions and the chart's values schema. `npm run docs` runs it.
 *
 *   npm exec tsx scripts/generate/index.ts           write the files
 *   npm exec tsx scripts/generate/index.ts --check   exit 1 when a checked-in file differs
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { repoRoot } from '../neo4j/local-neo4j.ts';
import { chartAlertFiles } from './chart-alerts.ts';
import { dashboardFiles } from './dashboards/index.ts';
import type { GeneratedFile } from './files.ts';
import { valuesSchemaFiles } from './values-schema.ts';

/** Every generated file, by path relative to the repository root. */
export function generatedFiles(): GeneratedFile[] {
  return [...dashboardFiles(), ...valuesSchemaFiles(), ...chartAlertFiles()];
}

async function main(): Promise<void> {
  const check = process.argv.includes('--check');
  const stale: string[] = [];
  for (const file of generatedFiles()) {
    const absolute = join(repoRoot, file.path);
    const current = await readFile(absolute, 'utf8').catch(() => undefined);
    if (current === file.content) continue;
    if (check) stale.push(file.path);
    else {
      await mkdir(dirname(absolute), { recursive: true });
      await writeFile(absolute, file.content);
      console.log(`wrote ${file.path}`);
    }
  }
  if (stale.length > 0) {
    console.error(`out of date (run: npm run docs):\n  ${stale.join('\n  ')}`);
    process.exit(1);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
