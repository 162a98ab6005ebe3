/** `npm run docs`: rewrites the generated reference docs. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderConfigurationDoc, renderMetricsDoc } from './docs.ts';
import { repoRoot } from './neo4j/local-neo4j.ts';

writeFileSync(join(repoRoot, 'docs', 'configuration.md'), renderConfigurationDoc());
writeFileSync(join(repoRoot, 'docs', 'metrics.md'), renderMetricsDoc());
console.log('wrote docs/configuration.md and docs/metrics.md');
