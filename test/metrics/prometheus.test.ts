import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import client from 'prom-client';
import { allMetrics, PrometheusSink, Recorder } from '../../src/metrics/index.ts';
import { parseExposition } from '../support/prometheus-text.ts';

function canonical(text: string) {
  const parsed = parseExposition(text);
  const samples = parsed.samples
    .map((sample) => `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())} ${sample.value}`)
    .sort();
  return { types: [...parsed.types.entries()].sort(), samples };
}

describe('PrometheusSink', () => {
  it("renders exactly what prom-client's own renderer would, including escaped label values", async () => {
    const sink = new PrometheusSink();
    const recorder = new Recorder({ sinks: [sink] });
    // Another metric in the same registry, as a worker's own metrics would be.
    new client.Counter({ name: 'worker_jobs_total', help: 'jobs', registers: [sink.registry] }).inc(3);
    const awkward = 'a "quoted" \\ value\nwith a newline';
    for (const definition of allMetrics) {
      const labels = Object.fromEntries(definition.labelNames.map((name, i) => [name, i === 0 ? awkward : `v${i}`]));
      if (definition.kind === 'counter') recorder.counter(definition).inc(labels, 2);
      else if (definition.kind === 'gauge') recorder.gauge(definition).set(labels, 0.25);
      else {
        recorder.histogram(definition).observe(labels, 0.003);
        recorder.histogram(definition).observe(labels, 7);
        recorder.histogram(definition).observe(labels, 1e9);
      }
    }
    const fast = (await sink.render('prometheus')).body;
    const reference = await sink.registry.metrics();
    assert.deepEqual(canonical(fast), canonical(reference));
    assert.ok(fast.includes('worker_jobs_total 3'));

    // Later scrapes reuse what the first one rendered once per series; their numbers must still move.
    for (const definition of allMetrics.filter((candidate) => candidate.kind === 'histogram')) {
      const labels = Object.fromEntries(definition.labelNames.map((name, i) => [name, i === 0 ? awkward : `v${i}`]));
      recorder.histogram(definition).observe(labels, 0.5);
    }
    const second = (await sink.render('prometheus')).body;
    assert.notEqual(second, fast);
    assert.deepEqual(canonical(second), canonical(await sink.registry.metrics()));
  });
});
