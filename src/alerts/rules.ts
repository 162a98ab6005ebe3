/**
 * Renders the configured thresholds as a Prometheus rule file, following the monitoring-mixin
 * conventions: CamelCase alert names with a common prefix, a `severity` label, and `summary`,
 * templated `description` and `runbook_url` annotations. A threshold with both levels becomes two
 * rules of the same name, one per severity, as in node-mixin and kubernetes-mixin.
 */
import { stringify as toYaml } from 'yaml';
import type { AlertsConfig } from '../config/alerts.ts';
import { SIDECAR_VERSION } from '../contracts.ts';
import { type AlertRule, configuredAlerts } from './thresholds.ts';

export interface PrometheusAlertingRule {
  alert: string;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: { summary: string; description: string; runbook_url: string };
}

export interface PrometheusRuleFile {
  groups: Array<{ name: string; rules: PrometheusAlertingRule[] }>;
}

/** Numbers as PromQL literals: no exponent for ordinary levels, full precision. */
function promqlNumber(value: number): string {
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(12)));
}

export function runbookUrl(config: AlertsConfig, rule: Pick<AlertRule, 'definition'>): string {
  return config.prometheus.runbookUrlTemplate.replaceAll('%s', rule.definition.anchor);
}

export function renderRule(config: AlertsConfig, rule: AlertRule): PrometheusAlertingRule {
  const context = { selector: config.prometheus.selector, window: rule.window ?? '' };
  const expression = rule.definition.expression(context);
  const allowance = rule.definition.allowance?.expression(context);
  return {
    alert: rule.name,
    expr: `(${expression}) >= ${allowance ? `(${allowance}) + ` : ''}${promqlNumber(rule.level)}`,
    for: rule.for,
    labels: { ...config.prometheus.labels, severity: rule.severity },
    annotations: {
      summary: rule.definition.summary,
      description: rule.description,
      runbook_url: runbookUrl(config, rule),
    },
  };
}

export function renderRules(config: AlertsConfig): PrometheusRuleFile {
  const rules = configuredAlerts(config.thresholds, config.prometheus.namePrefix).map((rule) =>
    renderRule(config, rule),
  );
  return { groups: [{ name: config.prometheus.groupName, rules }] };
}

export function renderRulesYaml(config: AlertsConfig): string {
  const header = [
    `# Prometheus alert rules rendered by neo4j-pool-sidecar ${SIDECAR_VERSION} (\`neo4j-pool-sidecar rules\`)`,
    '# from the alerts section of its configuration; the sidecar evaluates the same thresholds itself.',
    '# Edit the configuration and render again rather than editing this file.',
  ].join('\n');
  return `${header}\n${toYaml(renderRules(config), { lineWidth: 0 })}`;
}
