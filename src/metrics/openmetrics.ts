/**
 * OpenMetrics text rendering from the registry's JSON view.
 *
 * prom-client can render OpenMetrics, but it does so by renaming counter objects in place, which
 * breaks the Prometheus text format for every later scrape of the same registry. Rendering from
 * `getMetricsAsJSON()` serves both formats from one registry without touching it.
 */
import type { Registry } from 'prom-client';

export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

function formatLabels(labels: Record<string, string | number>): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  return `{${entries.map(([name, value]) => `${name}="${escapeLabelValue(String(value))}"`).join(',')}}`;
}

export async function renderOpenMetrics(registry: Registry): Promise<string> {
  const families = await registry.getMetricsAsJSON();
  const lines: string[] = [];
  for (const family of families) {
    const type = String(family.type);
    const isCounter = type === 'counter';
    const familyName = isCounter ? family.name.replace(/_total$/, '') : family.name;
    lines.push(`# TYPE ${familyName} ${type}`);
    lines.push(`# HELP ${familyName} ${escapeHelp(family.help)}`);
    for (const sample of family.values as Array<{
      value: number;
      labels: Record<string, string | number>;
      metricName?: string;
    }>) {
      const sampleName = sample.metricName ?? (isCounter ? `${familyName}_total` : familyName);
      lines.push(`${sampleName}${formatLabels(sample.labels)} ${formatValue(sample.value)}`);
    }
  }
  lines.push('# EOF');
  return `${lines.join('\n')}\n`;
}
