/**
 * StatsD exporter (hot-shots), fed by the same definitions as Prometheus.
 *
 * Per-event UDP writes cost ~12 us each, too much for every query, so:
 *  - counters are summed in memory and sent once per flush interval;
 *  - gauges are sent once per flush interval, after the recorder's samplers ran;
 *  - histograms go out per event (StatsD must see each value to compute percentiles), through
 *    hot-shots' packet buffer and with a configurable sample rate.
 */
import { StatsD } from 'hot-shots';
import { sidecar } from './catalogue.ts';
import type { MetricDefinition } from './definitions.ts';
import type { MetricSink, Recorder, SeriesSink } from './recorder.ts';

export type StatsdTagFormat = 'dogstatsd' | 'telegraf' | 'none';

export interface StatsdSinkOptions {
  host: string;
  port: number;
  /** Prepended to every metric name, e.g. `neo4j.`. */
  prefix: string;
  /** DogStatsD `|#k:v`, Telegraf `,k=v`, or none: label values become name segments. */
  tagFormat: StatsdTagFormat;
  /** Fraction of histogram values sent (counters and gauges are exact). */
  sampleRate: number;
  /** Packet size that triggers a send; keep under the path MTU. */
  maxBufferSize: number;
  /** How often counters, gauges and the packet buffer are flushed. */
  flushIntervalMs: number;
  /** Told (rate-limited by the caller) when a packet could not be sent. */
  onSendError?: (error: Error) => void;
}

export interface StatsdEvent {
  title: string;
  text: string;
  alertType: 'info' | 'warning' | 'error' | 'success';
  tags?: Record<string, string>;
}

/** Characters that would break the line protocol in a name segment (`:` separates name and value). */
function sanitize(value: string): string {
  return value.replace(/[^A-Za-z0-9_.\-/]/g, '_');
}

/** Label values as tags; hot-shots renders them as `k:v` (DogStatsD) or `k=v` (Telegraf) and escapes them. */
type Tags = Record<string, string>;

interface BufferedSeries {
  name: string;
  tags: Tags;
  pending: number;
}

export class StatsdSink implements MetricSink {
  private readonly client: StatsD;
  private readonly counters: BufferedSeries[] = [];
  private readonly gauges = new Set<BufferedSeries>();
  private readonly timer: NodeJS.Timeout;
  private recorder: Recorder | undefined;
  private closed = false;

  constructor(private readonly options: StatsdSinkOptions) {
    this.client = new StatsD({
      host: options.host,
      port: options.port,
      prefix: options.prefix,
      telegraf: options.tagFormat === 'telegraf',
      maxBufferSize: options.maxBufferSize,
      bufferFlushInterval: options.flushIntervalMs,
      errorHandler: (error) => this.sendFailed(error),
    });
    this.timer = setInterval(() => this.flushAggregates(), options.flushIntervalMs);
    this.timer.unref();
  }

  attach(recorder: Recorder): void {
    this.recorder = recorder;
  }

  series(definition: MetricDefinition, labelValues: readonly string[]): SeriesSink {
    const { name, tags } = this.nameAndTags(definition, labelValues);
    switch (definition.kind) {
      case 'counter': {
        const buffered: BufferedSeries = { name, tags, pending: 0 };
        this.counters.push(buffered);
        return {
          record: (value) => {
            buffered.pending += value;
          },
          remove: () => {
            this.sendCounter(buffered);
            const index = this.counters.indexOf(buffered);
            if (index >= 0) this.counters.splice(index, 1);
          },
        };
      }
      case 'gauge': {
        const buffered: BufferedSeries = { name, tags, pending: 0 };
        this.gauges.add(buffered);
        return {
          record: (value) => {
            buffered.pending = value;
          },
          remove: () => {
            this.gauges.delete(buffered);
          },
        };
      }
      case 'histogram': {
        const sampleRate = this.options.sampleRate;
        const client = this.client;
        if (definition.unit === 'seconds') {
          return {
            record: (value) => client.timing(name, value * 1000, sampleRate, tags),
            remove: () => {},
          };
        }
        // Only DogStatsD knows the `h` type; plain StatsD and Telegraf compute percentiles for `ms`.
        if (this.options.tagFormat === 'dogstatsd') {
          return { record: (value) => client.histogram(name, value, sampleRate, tags), remove: () => {} };
        }
        return { record: (value) => client.timing(name, value, sampleRate, tags), remove: () => {} };
      }
    }
  }

  /** A StatsD event (DogStatsD `_e`); used for alert transitions. No-op for other tag formats. */
  event(event: StatsdEvent): void {
    if (this.options.tagFormat !== 'dogstatsd' || this.closed) return;
    this.client.event(event.title, event.text, { alert_type: event.alertType }, event.tags ?? {});
  }

  async flush(): Promise<void> {
    this.flushAggregates();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flushAggregates();
    this.closed = true;
    clearInterval(this.timer);
    await new Promise<void>((done) => this.client.close(() => done()));
  }

  private nameAndTags(definition: MetricDefinition, labelValues: readonly string[]): { name: string; tags: Tags } {
    if (this.options.tagFormat === 'none') {
      const segments = labelValues.map((value) => sanitize(value || 'none'));
      return { name: [definition.statsdName, ...segments].join('.'), tags: {} };
    }
    const tags = Object.fromEntries(definition.labelNames.map((label, i) => [label, labelValues[i] ?? '']));
    return { name: definition.statsdName, tags };
  }

  private flushAggregates(): void {
    if (this.closed) return;
    this.recorder?.sample();
    for (const counter of this.counters) this.sendCounter(counter);
    for (const gauge of this.gauges) this.client.gauge(gauge.name, gauge.pending, 1, gauge.tags);
  }

  private sendCounter(counter: BufferedSeries): void {
    if (counter.pending === 0 || this.closed) return;
    this.client.increment(counter.name, counter.pending, 1, counter.tags);
    counter.pending = 0;
  }

  private sendFailed(error: Error): void {
    this.recorder?.counter(sidecar.statsdSendErrors).inc({});
    this.options.onSendError?.(error);
  }
}
