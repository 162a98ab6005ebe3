import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { renderConfigurationDoc, renderMetricsDoc } from '../scripts/docs.ts';
import { repoRoot } from '../scripts/neo4j/local-neo4j.ts';
import { allMetrics, PrometheusSink, Recorder } from '../src/metrics/index.ts';

function committed(name: string): string {
  return readFileSync(join(repoRoot, 'docs', name), 'utf8');
}

describe('generated reference docs', () => {
  it('docs/configuration.md matches the config schema (run `npm run docs` after changing it)', () => {
    assert.equal(committed('configuration.md'), renderConfigurationDoc());
  });

  it('docs/metrics.md matches the metric catalogue (run `npm run docs` after changing it)', () => {
    assert.equal(committed('metrics.md'), renderMetricsDoc());
  });

  it('docs/metrics.md lists exactly the metric families the Prometheus registry exposes', async () => {
    const sink = new PrometheusSink();
    const recorder = new Recorder({ sinks: [sink] });
    for (const definition of allMetrics) {
      const labels = Object.fromEntries(definition.labelNames.map((name) => [name, 'x']));
      if (definition.kind === 'counter') recorder.counter(definition).inc(labels);
      else if (definition.kind === 'gauge') recorder.gauge(definition).set(labels, 1);
      else recorder.histogram(definition).observe(labels, 1);
    }
    const exposed = (await sink.registry.getMetricsAsJSON()).map((family) => family.name).sort();
    const documented = [...committed('metrics.md').matchAll(/^\| `([a-z0-9_]+)` \|/gm)]
      .map((match) => match[1]!)
      .sort();
    assert.deepEqual(documented, exposed);
  });
});
