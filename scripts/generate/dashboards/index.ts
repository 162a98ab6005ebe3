/**
 * The Grafana dashboards (dashboards/*.json, copied into the Helm chart), built with Grafana's own
 * builders (@grafana/grafana-foundation-sdk) from the metric catalogue and the default alert levels.
 * Metric names come from src/metrics/catalogue.ts, so a renamed metric breaks the build rather than
 * leaving a panel that silently shows nothing.
 *
 * To add a panel: in the dashboard's module (fleet.ts, queries.ts, connections.ts), chain
 * `.withPanel(new TimeSeriesPanel(title, description, unit).withTarget(rangeQuery(expr, legend)))`
 * after the row it belongs to (StatPanel + instantQuery for a single number, TablePanel for a
 * table; `.alertLevels(alertLevels('<threshold key>'))` draws an alert's levels). Build selectors
 * with the module's `select(metric)`, so the job, instance, pool and database filters apply. Panels
 * flow left to right, 12 columns wide by default (stat 4); `.span(n)` changes that.
 * To add a row: `.withRow(row('Title'))`, then its panels. A new dashboard is a module returning
 * `poolDashboard({...})` with its rows, listed in DASHBOARDS below.
 * Then `npm run docs`, and run test/deploy/dashboards.test.ts (lint) and
 * test/deploy/dashboards-prometheus.test.ts (every query returns data against a real Prometheus).
 */
import { join } from 'node:path';
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { CHART_PATH, type GeneratedFile, jsonFile } from '../files.ts';
import { connectionsDashboard } from './connections.ts';
import { renderDashboard } from './dashboard.ts';
import { fleetDashboard } from './fleet.ts';
import { queriesDashboard } from './queries.ts';

export const DASHBOARDS: ReadonlyArray<() => dashboard.DashboardBuilder> = [
  fleetDashboard,
  queriesDashboard,
  connectionsDashboard,
];

/** Each dashboard as dashboards/<uid>.json and the chart's copy (a chart cannot read files outside it). */
export function dashboardFiles(): GeneratedFile[] {
  return DASHBOARDS.flatMap((build) => {
    const rendered = renderDashboard(build());
    const file = `${rendered.uid}.json`;
    return [jsonFile(join('dashboards', file), rendered), jsonFile(join(CHART_PATH, 'dashboards', file), rendered)];
  });
}
