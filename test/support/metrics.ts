/**
 * Reads values back out of a prom-client registry, the way Prometheus would see them.
 */
import type { Registry } from 'prom-client';

interface Sample {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

function matches(sample: Sample, labels: Record<string, string>): boolean {
  return Object.entries(labels).every(([name, value]) => String(sample.labels[name]) === value);
}

/** Sum of the samples of `name` (a family or a histogram's `_count`/`_sum`) that carry the given labels. */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const families = await registry.getMetricsAsJSON();
  let total = 0;
  for (const family of families) {
    for (const sample of family.values as Sample[]) {
      const sampleName = sample.metricName ?? family.name;
      if (sampleName === name && matches(sample, labels)) total += sample.value;
    }
  }
  return total;
}

/** Every label set of a metric family, for cardinality and label-content assertions. */
export async function metricLabelSets(registry: Registry, name: string): Promise<Array<Record<string, string>>> {
  const families = await registry.getMetricsAsJSON();
  const family = families.find((candidate) => candidate.name === name);
  if (!family) return [];
  return (family.values as Sample[])
    .filter((sample) => (sample.metricName ?? family.name) === name || sample.metricName?.endsWith('_count'))
    .map((sample) => Object.fromEntries(Object.entries(sample.labels).map(([key, value]) => [key, String(value)])));
}
