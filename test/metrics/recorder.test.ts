import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PrometheusSink, type QuerySample, type QuerySink, query, Recorder, sidecar } from '../../src/metrics/index.ts';
import { metricValue } from '../support/metrics.ts';

describe('Recorder', () => {
  it('fans one measurement out to every sink, reusing the series', async () => {
    const first = new PrometheusSink();
    const second = new PrometheusSink();
    const recorder = new Recorder({ sinks: [first, second] });
    const errors = recorder.counter(query.errors);
    errors.inc({ source: 'driver', database: 'neo4j', code: 'Neo.ClientError.Statement.SyntaxError' });
    errors.inc({ source: 'driver', database: 'neo4j', code: 'Neo.ClientError.Statement.SyntaxError' }, 2);
    for (const sink of [first, second]) {
      assert.equal(await metricValue(sink.registry, 'neo4j_query_errors_total'), 3);
    }
    assert.equal(errors.seriesCount, 1);
  });

  it('keeps the number of series bounded whatever label values arrive', async () => {
    const sink = new PrometheusSink();
    const reported: unknown[] = [];
    const recorder = new Recorder({ sinks: [sink], maxSeriesPerMetric: 50, onError: (error) => reported.push(error) });
    const errors = recorder.counter(query.errors);
    for (let i = 0; i < 100_000; i++) errors.inc({ source: 'proxy', database: `db-${i}`, code: `Code.${i}` });
    assert.equal(errors.seriesCount, 51, '50 real series plus one overflow series');
    assert.equal(await metricValue(sink.registry, 'neo4j_query_errors_total'), 100_000, 'no count is lost');
    assert.equal(
      await metricValue(sink.registry, 'neo4j_query_errors_total', {
        source: 'proxy',
        database: 'other',
        code: 'other',
      }),
      100_000 - 50,
      'bounded labels keep their value, the others fold into "other"',
    );
    assert.equal(
      await metricValue(sink.registry, 'neo4j_sidecar_series_overflow_total', { metric: 'neo4j_query_errors_total' }),
      100_000 - 50,
    );
    assert.equal(reported.length, 1, 'the overflow is reported once, not per event');
    assert.equal(
      (await sink.registry.getMetricsAsJSON()).find((f) => f.name === sidecar.seriesOverflow.name)?.values.length,
      1,
    );
  });

  it('removes a series from every sink', async () => {
    const sink = new PrometheusSink();
    const recorder = new Recorder({ sinks: [sink] });
    const inFlight = recorder.gauge(query.inFlight);
    inFlight.inc({ source: 'driver' });
    inFlight.inc({ source: 'proxy' });
    inFlight.dec({ source: 'proxy' });
    inFlight.remove({ source: 'driver' });
    const values = (await sink.registry.getMetricsAsJSON()).find((f) => f.name === query.inFlight.name)?.values ?? [];
    assert.deepEqual(
      values.map((sample) => [sample.labels.source, sample.value]),
      [['proxy', 0]],
    );
  });

  it('never throws into the caller when a sink fails', () => {
    const reported: unknown[] = [];
    const failing = {
      series: () => ({
        record: () => {
          throw new Error('sink down');
        },
        remove: () => {},
      }),
    };
    const recorder = new Recorder({ sinks: [failing], onError: (error) => reported.push(error) });
    recorder
      .histogram(query.duration)
      .observe({ source: 'driver', database: 'x', mode: 'read', outcome: 'success' }, 1);
    assert.equal(reported.length, 1);
  });

  it('hands finished queries to any QuerySink, its own or one given per call, and never throws a failing one', () => {
    const sample: QuerySample = {
      text: 'RETURN 1',
      database: 'neo4j',
      mode: 'read',
      outcome: 'success',
      errorCode: null,
      durationSeconds: 0.01,
      records: 1,
      client: 'driver',
    };
    const collecting = (): QuerySink & { samples: QuerySample[] } => {
      const samples: QuerySample[] = [];
      return { metadataKey: null, samples, record: (received) => samples.push(received) };
    };
    const own = collecting();
    const other = collecting();
    const reported: unknown[] = [];
    const recorder = new Recorder({ queryStats: own, onError: (error) => reported.push(error) });
    recorder.recordQuery(sample);
    recorder.recordQuery(sample, other);
    assert.deepEqual([own.samples.length, other.samples.length], [1, 1]);
    const failing: QuerySink = {
      metadataKey: null,
      record: () => {
        throw new Error('statistics broken');
      },
    };
    recorder.recordQuery(sample, failing);
    assert.equal(reported.length, 1);
    new Recorder().recordQuery(sample); // no statistics: a no-op
  });

  it('rejects recording a definition as the wrong kind', () => {
    const recorder = new Recorder();
    assert.throws(() => recorder.counter(query.inFlight), /is a gauge, not a counter/);
  });
});
