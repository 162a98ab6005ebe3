/**
 * Alert thresholds: one config section, evaluated by the sidecar itself (`alertsComponentFactory`) and
 * rendered as Prometheus rules (`rulesCommand`, the `neo4j-pool-sidecar rules` command).
 */
import type { SidecarConfig } from '../config/index.ts';
import type { CliIo, ComponentFactory, ExtraCommand } from '../contracts.ts';
import { AlertEvaluator } from './evaluator.ts';
import { renderRulesYaml } from './rules.ts';

export {
  AlertEvaluator,
  type AlertEvaluatorOptions,
  type AlertEventSink,
  type AlertInstance,
  type AlertState,
} from './evaluator.ts';
export { type PrometheusAlertingRule, type PrometheusRuleFile, renderRules, renderRulesYaml } from './rules.ts';
export { humanize, humanizeDuration, humanizePercentage, renderTemplate } from './template.ts';
export {
  ALERT_DEFINITIONS,
  type AlertDefinition,
  type AlertRule,
  configuredAlerts,
  SEVERITIES,
  type Severity,
  THRESHOLD_KEYS,
} from './thresholds.ts';

/** Registered in src/components.ts: evaluates the thresholds unless `alerts.enabled` is false. */
export const alertsComponentFactory: ComponentFactory = (context) =>
  context.config.alerts.enabled
    ? new AlertEvaluator({
        config: context.config.alerts,
        recorder: context.recorder,
        logger: context.logger,
        ...(context.statsd ? { events: context.statsd } : {}),
      })
    : undefined;

/** `neo4j-pool-sidecar rules [--config file]`: prints the rule file for the configured thresholds. */
export const rulesCommand: ExtraCommand = (config: SidecarConfig, io: CliIo) => {
  io.stdout(renderRulesYaml(config.alerts));
  return 0;
};
