/**
 * StatsD export, received by a real UDP socket, for the same events the Prometheus sink sees.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import neo4j from 'neo4j-driver';
import { instrumentDriver } from '../../src/instrument/index.ts';
import { PrometheusSink, Recorder, StatsdSink, type StatsdTagFormat } from '../../src/metrics/index.ts';
import { eventually } from '../support/eventually.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';

async function udpListener(): Promise<{ socket: Socket; port: number; lines: string[] }> {
  const socket = createSocket('udp4');
  const lines: string[] = [];
  socket.on('message', (message) => lines.push(...message.toString().split('\n').filter(Boolean)));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { socket, port: socket.address().port, lines };
}

function waitFor(lines: string[], pattern: RegExp): Promise<string> {
  return eventually(() => {
    const found = lines.find((line) => pattern.test(line));
    assert.ok(found, `no StatsD line matched ${pattern}; got:\n${lines.join('\n')}`);
    return found;
  });
}

let server: TestNeo4j;
before(async () => {
  server = await sharedNeo4j();
});
after(releaseSharedNeo4j);

// A failing query names no database in its reply: it is labelled with the home database the driver's
// successful queries before it ran on (neo4j).
async function runQueries(tagFormat: StatsdTagFormat, packValues = false, flushIntervalMs = 100) {
  const udp = await udpListener();
  const statsd = new StatsdSink({
    host: '127.0.0.1',
    port: udp.port,
    prefix: 'neo4j.',
    tagFormat,
    sampleRate: 1,
    maxBufferSize: 1400,
    flushIntervalMs,
    packValues,
  });
  const recorder = new Recorder({ sinks: [new PrometheusSink(), statsd] });
  const driver = neo4j.driver(server.uri, neo4j.auth.basic(server.username, server.password));
  instrumentDriver(driver, { recorder, poolName: 'udp' });
  try {
    await driver.executeQuery('RETURN 1');
    await driver.executeQuery('RETURN 1');
    await assert.rejects(driver.executeQuery('RETURN broken('));
    await recorder.flush();
  } finally {
    await driver.close();
  }
  return { udp, statsd, recorder };
}

describe('StatsD export over real UDP', () => {
  it('sends DogStatsD lines: timings in ms, counters summed per flush, pool gauges', async () => {
    const { udp, recorder } = await runQueries('dogstatsd');
    try {
      await waitFor(
        udp.lines,
        /^neo4j\.query\.duration:[\d.]+\|ms\|#source:driver,database:neo4j,mode:write,outcome:success$/,
      );
      await waitFor(
        udp.lines,
        /^neo4j\.query\.errors:1\|c\|#source:driver,database:neo4j,code:Neo\.ClientError\.Statement\.SyntaxError$/,
      );
      await waitFor(udp.lines, /^neo4j\.driver\.connections\.created:1\|c\|#pool:udp,address:127\.0\.0\.1:\d+$/);
      await waitFor(udp.lines, /^neo4j\.driver\.connections\.max:100\|g\|#pool:udp,address:127\.0\.0\.1:\d+$/);
      await waitFor(udp.lines, /^neo4j\.driver\.connections\.acquisition:[\d.]+\|ms\|#pool:udp,/);
      const durations = udp.lines.filter((line) => line.startsWith('neo4j.query.duration:'));
      assert.equal(durations.length, 3, 'one timing per query');
    } finally {
      await recorder.close();
      udp.socket.close();
    }
  });

  it('packs the values of one series into one DogStatsD line when asked', async () => {
    // No timer flush during the queries: only the explicit flush at the end emits, so both values share a line.
    const { udp, recorder } = await runQueries('dogstatsd', true, 60_000);
    try {
      await waitFor(
        udp.lines,
        /^neo4j\.query\.duration:[\d.]+:[\d.]+\|ms\|#source:driver,database:neo4j,mode:write,outcome:success$/,
      );
    } finally {
      await recorder.close();
      udp.socket.close();
    }
  });

  it('sends Telegraf-style tags', async () => {
    const { udp, recorder } = await runQueries('telegraf');
    try {
      await waitFor(
        udp.lines,
        /^neo4j\.query\.duration,source=driver,database=neo4j,mode=write,outcome=success:[\d.]+\|ms$/,
      );
      await waitFor(
        udp.lines,
        /^neo4j\.query\.errors,source=driver,database=neo4j,code=Neo\.ClientError\.Statement\.SyntaxError:1\|c$/,
      );
    } finally {
      await recorder.close();
      udp.socket.close();
    }
  });

  it('puts label values into the name when tags are off', async () => {
    const { udp, recorder } = await runQueries('none');
    try {
      await waitFor(udp.lines, /^neo4j\.query\.errors\.driver\.neo4j\.Neo\.ClientError\.Statement\.SyntaxError:1\|c$/);
      await waitFor(udp.lines, /^neo4j\.query\.duration\.driver\.neo4j\.write\.success:[\d.]+\|ms$/);
    } finally {
      await recorder.close();
      udp.socket.close();
    }
  });

  it('counts send errors instead of failing when the agent host does not resolve', async () => {
    const statsd = new StatsdSink({
      host: 'statsd.invalid',
      port: 8125,
      prefix: 'neo4j.',
      tagFormat: 'dogstatsd',
      sampleRate: 1,
      maxBufferSize: 0,
      flushIntervalMs: 50,
      onSendError: () => {},
    });
    const prometheus = new PrometheusSink();
    const recorder = new Recorder({ sinks: [prometheus, statsd] });
    const histogram = recorder.histogram((await import('../../src/metrics/index.ts')).query.duration);
    for (let i = 0; i < 5; i++) {
      histogram.observe({ source: 'driver', database: 'neo4j', mode: 'read', outcome: 'success' }, 0.01);
    }
    try {
      await eventually(async () => {
        const metric = await prometheus.registry.getSingleMetric('neo4j_sidecar_statsd_send_errors_total')?.get();
        assert.ok((metric?.values[0]?.value ?? 0) > 0, 'send errors are counted');
      });
    } finally {
      await recorder.close();
    }
  });
});
