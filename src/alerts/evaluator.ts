/**
 * The sidecar's own alert evaluation: every `evaluationIntervalSeconds` it measures each configured
 * threshold on the recorder's live numbers, with Prometheus semantics (pending once the level is
 * reached, firing once it has held for `for`, resolved as soon as it no longer holds). It exports
 * neo4j_sidecar_alert_active{alert,severity}, logs each transition once, sends a StatsD event per
 * transition when asked to, and lists the active alerts in /status.
 */
import type { AlertsConfig } from '../config/alerts.ts';
import type { Component } from '../contracts.ts';
import type { Logger } from '../logger.ts';
import { alerts as alertMetrics } from '../metrics/catalogue.ts';
import type { Recorder } from '../metrics/recorder.ts';
import type { StatsdEvent } from '../metrics/statsd.ts';
import { MetricHistory } from './history.ts';
import { runbookUrl } from './rules.ts';
import { renderTemplate } from './template.ts';
import { type AlertRule, configuredAlerts, type Severity } from './thresholds.ts';

export interface AlertEventSink {
  event(event: StatsdEvent): void;
}

export interface AlertEvaluatorOptions {
  config: AlertsConfig;
  recorder: Recorder;
  logger?: Logger;
  /** Where transition events go (the StatsD sink), when alerts.statsdEvents is on. */
  events?: AlertEventSink;
}

export type AlertState = 'pending' | 'firing';

export interface AlertInstance {
  alert: string;
  severity: Severity;
  state: AlertState;
  labels: Record<string, string>;
  value: number;
  level: number;
  /** When the level was first reached (ISO 8601). */
  activeSince: string;
  /** When it started firing. */
  firingSince?: string;
  summary: string;
  description: string;
  runbookUrl: string;
}

interface TrackedInstance {
  rule: AlertRule;
  labels: Record<string, string>;
  value: number;
  activeAt: number;
  firingAt: number | undefined;
}

function labelsKey(labels: Readonly<Record<string, string>>): string {
  return Object.keys(labels)
    .sort()
    .map((name) => `${name}=${labels[name]}`)
    .join(',');
}

function instanceKey(rule: AlertRule, labels: Readonly<Record<string, string>>): string {
  return `${rule.name}\u0000${rule.severity}\u0000${labelsKey(labels)}`;
}

export class AlertEvaluator implements Component {
  readonly name = 'alerts';
  readonly rules: readonly AlertRule[];
  private readonly history: MetricHistory;
  private readonly instances = new Map<string, TrackedInstance>();
  private timer: NodeJS.Timeout | undefined;
  private lastEvaluatedAt: number | undefined;

  constructor(private readonly options: AlertEvaluatorOptions) {
    const { config, recorder } = options;
    this.rules = configuredAlerts(config.thresholds, config.prometheus.namePrefix);
    const tracked = [...new Set(this.rules.flatMap((rule) => rule.definition.history))];
    const longestWindowMs = Math.max(0, ...this.rules.map((rule) => rule.windowMs));
    this.history = new MetricHistory(recorder, tracked, longestWindowMs);
    const active = recorder.gauge(alertMetrics.active);
    for (const rule of this.rules) active.set({ alert: rule.name, severity: rule.severity }, 0);
  }

  async start(): Promise<void> {
    if (this.timer) return;
    this.evaluate();
    this.timer = setInterval(() => this.evaluate(), this.options.config.evaluationIntervalSeconds * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Evaluates every configured alert now; returns the pending and firing instances. */
  evaluate(now = Date.now()): AlertInstance[] {
    const reader = this.history.record(now);
    const seen = new Set<string>();
    for (const rule of this.rules) {
      let measured: ReturnType<AlertRule['definition']['measure']>;
      let allowances: Map<string, number> | undefined;
      try {
        measured = rule.definition.measure(reader, rule.windowMs);
        const allowance = rule.definition.allowance?.measure(reader);
        if (allowance) allowances = new Map(allowance.map(({ labels, value }) => [labelsKey(labels), value]));
      } catch (error) {
        this.options.logger?.warn({ component: 'alerts', alert: rule.name, err: error }, 'alert not evaluated');
        continue;
      }
      for (const { labels, value } of measured) {
        const allowance = allowances ? allowances.get(labelsKey(labels)) : 0;
        if (allowance === undefined || !Number.isFinite(value) || value < allowance + rule.level) continue;
        const key = instanceKey(rule, labels);
        seen.add(key);
        const tracked = this.instances.get(key) ?? {
          rule,
          labels: { ...labels },
          value,
          activeAt: now,
          firingAt: undefined,
        };
        tracked.value = value;
        this.instances.set(key, tracked);
        if (tracked.firingAt === undefined && now - tracked.activeAt >= rule.forMs) {
          tracked.firingAt = now;
          this.transition(tracked, 'firing');
        }
      }
    }
    for (const [key, tracked] of this.instances) {
      if (seen.has(key)) continue;
      this.instances.delete(key);
      if (tracked.firingAt !== undefined) this.transition(tracked, 'resolved');
    }
    this.publish();
    this.lastEvaluatedAt = now;
    return this.list();
  }

  /** Pending and firing instances, firing and critical first. */
  list(): AlertInstance[] {
    return [...this.instances.values()]
      .map((tracked) => this.describe(tracked))
      .sort(
        (a, b) =>
          Number(b.state === 'firing') - Number(a.state === 'firing') ||
          Number(b.severity === 'critical') - Number(a.severity === 'critical') ||
          a.alert.localeCompare(b.alert),
      );
  }

  /** Firing instances only. */
  active(): AlertInstance[] {
    return this.list().filter((instance) => instance.state === 'firing');
  }

  status(): Record<string, unknown> {
    const all = this.list();
    return {
      evaluatedAt: this.lastEvaluatedAt === undefined ? null : new Date(this.lastEvaluatedAt).toISOString(),
      active: all.filter((instance) => instance.state === 'firing'),
      pending: all.filter((instance) => instance.state === 'pending'),
      configured: this.rules.map((rule) => ({
        alert: rule.name,
        severity: rule.severity,
        level: rule.level,
        for: rule.for,
        ...(rule.window ? { window: rule.window } : {}),
      })),
    };
  }

  private describe(tracked: TrackedInstance): AlertInstance {
    const { rule } = tracked;
    return {
      alert: rule.name,
      severity: rule.severity,
      state: tracked.firingAt === undefined ? 'pending' : 'firing',
      labels: tracked.labels,
      value: tracked.value,
      level: rule.level,
      activeSince: new Date(tracked.activeAt).toISOString(),
      ...(tracked.firingAt !== undefined ? { firingSince: new Date(tracked.firingAt).toISOString() } : {}),
      summary: rule.definition.summary,
      description: this.render(tracked),
      runbookUrl: runbookUrl(this.options.config, rule),
    };
  }

  private render(tracked: TrackedInstance): string {
    try {
      return renderTemplate(tracked.rule.description, tracked.labels, tracked.value);
    } catch {
      return tracked.rule.definition.summary;
    }
  }

  private publish(): void {
    const firing = new Set<string>();
    for (const tracked of this.instances.values()) {
      if (tracked.firingAt !== undefined) firing.add(`${tracked.rule.name}\u0000${tracked.rule.severity}`);
    }
    const active = this.options.recorder.gauge(alertMetrics.active);
    for (const rule of this.rules) {
      active.set(
        { alert: rule.name, severity: rule.severity },
        firing.has(`${rule.name}\u0000${rule.severity}`) ? 1 : 0,
      );
    }
  }

  private transition(tracked: TrackedInstance, to: 'firing' | 'resolved'): void {
    const { rule } = tracked;
    const description = this.render(tracked);
    const fields = {
      component: 'alerts',
      alert: rule.name,
      severity: rule.severity,
      labels: tracked.labels,
      value: tracked.value,
      // Not `level`: that is pino's own key, and a second one overrides the line's log level.
      threshold: rule.level,
    };
    const logger = this.options.logger;
    if (to === 'firing') {
      const message = `${rule.name} (${rule.severity}) firing: ${description}`;
      if (rule.severity === 'critical') logger?.error(fields, message);
      else logger?.warn(fields, message);
    } else {
      logger?.info(fields, `${rule.name} (${rule.severity}) resolved`);
    }
    if (!this.options.config.statsdEvents || !this.options.events) return;
    try {
      this.options.events.event({
        title: `${rule.name} ${rule.severity} ${to}`,
        text: to === 'firing' ? `${rule.definition.summary} ${description}` : `${rule.definition.summary} Resolved.`,
        alertType: to === 'resolved' ? 'success' : rule.severity === 'critical' ? 'error' : 'warning',
        tags: { alert: rule.name, severity: rule.severity, ...tracked.labels },
      });
    } catch (error) {
      logger?.warn({ component: 'alerts', err: error }, 'StatsD alert event not sent');
    }
  }
}
