import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import client from 'prom-client';
import { registerProcessMetrics } from '../../src/metrics/index.ts';
import { parseExposition } from '../support/prometheus-text.ts';

const PREFIX = 'test_';
const STALL_MS = 400;

async function scrape(registry: client.Registry): Promise<Map<string, number>> {
  const parsed = parseExposition(await registry.metrics());
  return new Map(
    parsed.samples.filter((sample) => Object.keys(sample.labels).length === 0).map((s) => [s.name, s.value]),
  );
}

function blockEventLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy: the delay monitor sees the loop held for `ms`
  }
}

describe('process metrics', () => {
  it("keeps prom-client's process metrics and reports the event-loop delay since the previous scrape", async () => {
    const registry = new client.Registry();
    const stop = registerProcessMetrics(registry, { prefix: PREFIX, eventLoopResolutionMs: 5 });
    try {
      const first = await scrape(registry);
      assert.ok((first.get(`${PREFIX}process_resident_memory_bytes`) ?? 0) > 0, 'resident memory');
      assert.ok(first.has(`${PREFIX}process_cpu_seconds_total`), 'CPU time');
      assert.ok(first.has(`${PREFIX}nodejs_heap_size_used_bytes`), 'heap');
      // prom-client reports a minimum of 9.2e9 s before the monitor has measured anything.
      assert.ok((first.get(`${PREFIX}nodejs_eventloop_lag_min_seconds`) ?? Number.NaN) < 1, 'no sentinel minimum');

      await new Promise((resolve) => setTimeout(resolve, 30));
      // Longer than a loaded machine plausibly holds this process off the CPU between scrapes, so the
      // next scrape's own readings stay below it.
      blockEventLoop(STALL_MS);
      await new Promise((resolve) => setTimeout(resolve, 30));
      const afterStall = await scrape(registry);
      const max = afterStall.get(`${PREFIX}nodejs_eventloop_lag_max_seconds`) ?? 0;
      const p99 = afterStall.get(`${PREFIX}nodejs_eventloop_lag_p99_seconds`) ?? 0;
      const p50 = afterStall.get(`${PREFIX}nodejs_eventloop_lag_p50_seconds`) ?? 0;
      const min = afterStall.get(`${PREFIX}nodejs_eventloop_lag_min_seconds`) ?? 0;
      assert.ok(max >= (STALL_MS - 20) / 1000, `the ${STALL_MS} ms stall shows in the maximum: ${max}`);
      assert.ok(min <= p50 && p50 <= p99 && p99 <= max, `ordered readings: ${[min, p50, p99, max]}`);
      for (const dropped of ['mean', 'stddev']) {
        assert.equal(afterStall.has(`${PREFIX}nodejs_eventloop_lag_${dropped}_seconds`), false, dropped);
      }

      // The next scrape covers only what happened since this one: the stall is gone.
      await new Promise((resolve) => setTimeout(resolve, 60));
      const later = await scrape(registry);
      assert.ok((later.get(`${PREFIX}nodejs_eventloop_lag_max_seconds`) ?? 1) < max, 'readings restart per scrape');
    } finally {
      stop();
    }
  });
});
