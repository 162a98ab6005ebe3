/**
 * Shared pieces of the proxy tests: a proxy with its own recorder and metric deltas read the way
 * Prometheus sees them. The raw Bolt client for speaking exact bytes is in ../support/raw-bolt.ts.
 */
import { PassThrough } from 'node:stream';
import { createLogger } from '../../src/logger.ts';
import { PrometheusSink, Recorder } from '../../src/metrics/index.ts';
import { type BoltProxy, type BoltProxyOptions, startBoltProxy, upstreamFromUri } from '../../src/proxy/index.ts';
import { metricValue } from '../support/metrics.ts';

/** Connection teardown is asynchronous: the proxy tests poll with the shared helper. */
export { eventually } from '../support/eventually.ts';

export interface TestProxy {
  readonly proxy: BoltProxy;
  readonly recorder: Recorder;
  readonly sink: PrometheusSink;
  /** JSON log lines the proxy wrote. */
  readonly logs: string[];
  /** bolt://<proxy> */
  readonly boltUri: string;
  /** neo4j://<proxy> */
  readonly routingUri: string;
  /** Sum of a metric's samples with these labels, after the proxy's sampler ran. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  stop(): Promise<void>;
}

export async function startTestProxy(
  upstreamUri: string,
  options: Partial<Omit<BoltProxyOptions, 'recorder' | 'upstream'>> & { tlsCaFile?: string } = {},
): Promise<TestProxy> {
  const sink = new PrometheusSink();
  const recorder = new Recorder({ sinks: [sink] });
  const logs: string[] = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => logs.push(...chunk.toString().split('\n').filter(Boolean)));
  const { tlsCaFile, ...proxyOptions } = options;
  const proxy = await startBoltProxy({
    upstream: upstreamFromUri(upstreamUri, { tlsCaFile }),
    recorder,
    logger: createLogger({ level: 'debug', pretty: 'never', destination: stream }),
    port: 0,
    ...proxyOptions,
  });
  return {
    proxy,
    recorder,
    sink,
    logs,
    boltUri: `bolt://${proxy.address}`,
    routingUri: `neo4j://${proxy.address}`,
    async metric(name, labels = {}) {
      recorder.sample(true);
      return metricValue(sink.registry, name, labels);
    },
    stop: () => proxy.stop(1000),
  };
}

export function hostPort(uri: string): string {
  return new URL(uri).host;
}
