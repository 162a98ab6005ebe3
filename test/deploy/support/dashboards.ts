/** The checked-in dashboards, read as the parts of Grafana's model the tests look at. */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot } from '../../../scripts/neo4j/local-neo4j.ts';

export interface GrafanaTarget {
  expr: string;
  legendFormat?: string;
  refId: string;
  instant?: boolean;
  datasource?: unknown;
}

export interface GrafanaPanel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: unknown;
  targets?: GrafanaTarget[];
  panels?: GrafanaPanel[];
  fieldConfig?: {
    defaults: {
      unit?: string;
      thresholds?: { steps: Array<{ color: string; value: number | null }> };
      custom?: { thresholdsStyle?: { mode: string } };
    };
  };
}

export interface GrafanaVariable {
  name: string;
  type: string;
  query?: string | { query: string };
  allValue?: string;
}

export interface GrafanaDashboard {
  uid: string;
  title: string;
  editable: boolean;
  templating: { list: GrafanaVariable[] };
  panels: GrafanaPanel[];
}

export async function dashboardFiles(): Promise<string[]> {
  return (await readdir(join(repoRoot, 'dashboards'))).filter((name) => name.endsWith('.json')).sort();
}

export async function loadDashboards(): Promise<Map<string, GrafanaDashboard>> {
  const out = new Map<string, GrafanaDashboard>();
  for (const name of await dashboardFiles()) {
    out.set(name, JSON.parse(await readFile(join(repoRoot, 'dashboards', name), 'utf8')) as GrafanaDashboard);
  }
  return out;
}

/** Every panel that shows data (rows left out, their nested panels included). */
export function panelsOf(dashboard: GrafanaDashboard): GrafanaPanel[] {
  const out: GrafanaPanel[] = [];
  const walk = (panel: GrafanaPanel) => {
    if (panel.type !== 'row') out.push(panel);
    for (const child of panel.panels ?? []) walk(child);
  };
  for (const panel of dashboard.panels) walk(panel);
  return out;
}
