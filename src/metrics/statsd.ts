/**
 * StatsD exporter (hot-shots), fed by the same definitions as Prometheus.
 *
 * Per-event UDP writes cost ~12 us each, too much for every query, so:
 *  - counters are summed in memory and sent once per flush interval;
 *  - gauges are sent once per flush interval, after the recorder's samplers ran;
 *  - histograms go out per event (StatsD must see each value to compute percentiles), through
 *    hot-shots' packet buffer and with a configurable sample rate.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
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
  /**
   * DogStatsD only: send many values of a series in one line (`name:1.2:3.4|ms`), which the
   * Datadog agent understands since 6.25/7.25. Cuts the per-query cost several times.
   */
  packValues?: boolean;
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

function sanitizeTagKey(key: string): string {
  return key.replace(/[:|,@#=\s]/g, '_');
}

/** Colons are fine in tag values (addresses); separators of the line protocol are not. */
function sanitizeTagValue(value: string): string {
  return value.replace(/[|,@#=\s]/g, '_');
}

/**
 * hot-shots' unbuffered packet send (socket, DNS cache, error handler). The sink batches lines
 * itself: hot-shots' own buffer costs ~2.6 us per line, its array-free batching here ~0.1 us.
 */
interface PacketClient {
  sendMessage(packet: string): void;
}

/** Label values as tags; hot-shots renders them as `k:v` (DogStatsD) or `k=v` (Telegraf) and escapes them. */
type Tags = Record<string, string>;

/** DogStatsD value packing (`name:v1:v2:v3|ms|#tags`): one line carries many values of one series. */
interface PackedSeries {
  head: string;
  tail: string;
  values: string[];
  bytes: number;
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string, family: number) => void;

const RESOLVED_TTL_MS = 60_000;
const FAILED_TTL_MS = 5_000;

/**
 * The UDP socket's name lookup. Without it every packet runs its own getaddrinfo on libuv's four
 * threads; with an unresolvable host those lookups queue without bound and starve every other lookup
 * and file access of the process (a `localhost` lookup was measured waiting 112 s). So one lookup per
 * host at a time, its answer kept for a minute and a failure for a few seconds (sends fail at once).
 */
function cachingLookup(): (hostname: string, options: unknown, callback: LookupCallback) => void {
  const answers = new Map<string, { at: number; error: NodeJS.ErrnoException | null; address: LookupAddress }>();
  const pending = new Map<string, LookupCallback[]>();
  return (hostname, options, callback) => {
    const family = typeof options === 'number' ? options : ((options as { family?: number } | null)?.family ?? 0);
    const ipVersion = isIP(hostname);
    if (ipVersion !== 0) return process.nextTick(callback, null, hostname, ipVersion);
    const key = `${hostname}/${family}`;
    const cached = answers.get(key);
    if (cached && Date.now() - cached.at < (cached.error ? FAILED_TTL_MS : RESOLVED_TTL_MS)) {
      return process.nextTick(callback, cached.error, cached.address.address, cached.address.family);
    }
    const waiting = pending.get(key);
    if (waiting) return void waiting.push(callback);
    pending.set(key, [callback]);
    dnsLookup(hostname, { family: family === 6 ? 6 : family === 4 ? 4 : 0 }, (error, address, resolvedFamily) => {
      const answer = { address: error ? '' : address, family: error ? 0 : resolvedFamily };
      answers.set(key, { at: Date.now(), error, address: answer });
      const callbacks = pending.get(key) ?? [];
      pending.delete(key);
      for (const waiter of callbacks) waiter(error, answer.address, answer.family);
    });
  };
}

/** A counter (summed) or gauge (last value) waiting for the next flush, with its line pre-rendered around the value. */
interface BufferedSeries {
  head: string;
  tail: string;
  pending: number;
}

export class StatsdSink implements MetricSink {
  private readonly client: StatsD;
  private readonly packetClient: PacketClient;
  private lines: string[] = [];
  private lineBytes = 0;
  private readonly packed = new Set<PackedSeries>();
  private readonly counters: BufferedSeries[] = [];
  private readonly gauges = new Set<BufferedSeries>();
  private readonly timer: NodeJS.Timeout;
  private recorder: Recorder | undefined;
  private closed = false;

  constructor(private readonly options: StatsdSinkOptions) {
    this.client = new StatsD({
      host: options.host,
      port: options.port,
      telegraf: options.tagFormat === 'telegraf',
      // The sink renders and batches metric lines itself; hot-shots sends the packets and events.
      maxBufferSize: 0,
      errorHandler: (error) => this.sendFailed(error),
      udpSocketOptions: { type: isIP(options.host) === 6 ? 'udp6' : 'udp4', lookup: cachingLookup() },
    });
    // `sendMessage` is on hot-shots' prototype but not in its typings.
    this.packetClient = this.client as unknown as PacketClient;
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
        const buffered: BufferedSeries = { ...this.lineParts(name, tags, 'c', 1), pending: 0 };
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
        const buffered: BufferedSeries = { ...this.lineParts(name, tags, 'g', 1), pending: 0 };
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
        // Each value must reach StatsD for its percentiles, so this is the per-query path: the
        // line is pre-rendered per series and only the number is formatted per event.
        const scale = definition.unit === 'seconds' ? 1000 : 1;
        // Only DogStatsD knows the `h` type; plain StatsD and Telegraf compute percentiles for `ms`.
        const type = definition.unit !== 'seconds' && this.options.tagFormat === 'dogstatsd' ? 'h' : 'ms';
        const sampleRate = this.options.sampleRate;
        const { head, tail } = this.lineParts(name, tags, type, sampleRate);
        const sampled = sampleRate < 1;
        if (this.options.packValues && this.options.tagFormat === 'dogstatsd') {
          const packed: PackedSeries = { head, tail, values: [], bytes: 0 };
          this.packed.add(packed);
          return {
            record: (value) => {
              if (sampled && Math.random() >= sampleRate) return;
              const text = String(value * scale);
              packed.values.push(text);
              packed.bytes += text.length + 1;
              if (packed.bytes + head.length + tail.length > this.options.maxBufferSize) this.emitPacked(packed);
            },
            remove: () => {
              this.emitPacked(packed);
              this.packed.delete(packed);
            },
          };
        }
        return {
          record: (value) => {
            if (sampled && Math.random() >= sampleRate) return;
            this.enqueueLine(head + value * scale + tail);
          },
          remove: () => {},
        };
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

  /**
   * The fixed parts of a StatsD line around the value, in the client's tag format:
   * DogStatsD `name:V|ms|@0.1|#k:v`, Telegraf `name,k=v:V|ms|@0.1`, plain `name:V|ms|@0.1`.
   */
  private lineParts(name: string, tags: Tags, type: string, sampleRate: number): { head: string; tail: string } {
    const rate = sampleRate < 1 ? `|@${sampleRate}` : '';
    const entries = Object.entries(tags).map(([key, value]) => [sanitizeTagKey(key), sanitizeTagValue(value)] as const);
    const fullName = `${this.options.prefix}${name}`;
    if (entries.length === 0) return { head: `${fullName}:`, tail: `|${type}${rate}` };
    if (this.options.tagFormat === 'telegraf') {
      return { head: `${fullName},${entries.map(([k, v]) => `${k}=${v}`).join(',')}:`, tail: `|${type}${rate}` };
    }
    return { head: `${fullName}:`, tail: `|${type}${rate}|#${entries.map(([k, v]) => `${k}:${v}`).join(',')}` };
  }

  /** Lines are ASCII but for label values; byte counts are checked where the packet is built. */
  private enqueueLine(line: string): void {
    if (this.lineBytes + line.length + 1 > this.options.maxBufferSize) this.flushLines();
    this.lines.push(line);
    this.lineBytes += line.length + 1;
    if (this.options.maxBufferSize === 0) this.flushLines();
  }

  private flushLines(): void {
    if (this.lines.length === 0 || this.closed) return;
    const packet = this.lines.join('\n');
    this.lines = [];
    this.lineBytes = 0;
    this.packetClient.sendMessage(packet);
  }

  private emitPacked(packed: PackedSeries): void {
    if (packed.values.length === 0) return;
    const line = packed.head + packed.values.join(':') + packed.tail;
    packed.values = [];
    packed.bytes = 0;
    this.enqueueLine(line);
  }

  private flushAggregates(): void {
    if (this.closed) return;
    for (const packed of this.packed) this.emitPacked(packed);
    this.recorder?.sample();
    for (const counter of this.counters) this.sendCounter(counter);
    for (const gauge of this.gauges) this.enqueueLine(gauge.head + gauge.pending + gauge.tail);
    this.flushLines();
  }

  private sendCounter(counter: BufferedSeries): void {
    if (counter.pending === 0 || this.closed) return;
    this.enqueueLine(counter.head + counter.pending + counter.tail);
    counter.pending = 0;
  }

  private sendFailed(error: Error): void {
    this.recorder?.counter(sidecar.statsdSendErrors).inc({});
    this.options.onSendError?.(error);
  }
}
