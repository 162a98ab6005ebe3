/**
 * What every dashboard shares: the datasource, job and instance variables (plus its own pool or
 * database filters), the link menu to the other pool dashboards, and the built-in annotations.
 */
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { pool, query } from '../../../src/metrics/catalogue.ts';
import { DATASOURCE, type Filter, type VariableName } from './panels.ts';

const TAG = 'neo4j-pool-sidecar';

export interface DashboardHeader {
  /** Also the file name: dashboards/<uid>.json. */
  uid: string;
  title: string;
  description: string;
  /** Variables after datasource, job and instance. */
  filters: readonly Filter[];
}

/**
 * A multi-value query variable listing a label's values from the metric every reporting process
 * exports (the pool metrics; queries for database), narrowed by the variables before it.
 */
function variable(name: VariableName, filtersBefore: readonly VariableName[]): dashboard.QueryVariableBuilder {
  const label = { job: 'Job', instance: 'Instance', pool: 'Pool', database: 'Database' }[name];
  const anchor = name === 'database' ? query.duration : pool.max;
  const anchorName = name === 'database' ? `${query.duration.name}_count` : pool.max.name;
  // Earlier selections narrow the choices, but only through labels the anchor metric has.
  const applicable = filtersBefore.filter(
    (before) => before === 'job' || before === 'instance' || (anchor.labelNames as readonly string[]).includes(before),
  );
  const matchers = applicable.map((before) => `${before}=~"$${before}"`);
  const selector = matchers.length > 0 ? `${anchorName}{${matchers.join(', ')}}` : anchorName;
  const labelValues = `label_values(${selector}, ${name})`;
  return (
    new dashboard.QueryVariableBuilder(name)
      .label(label)
      .datasource(DATASOURCE)
      .query({ query: labelValues, refId: `${label}Variable`, qryType: 1 })
      .definition(labelValues)
      // Refreshed on time-range change so new pods and pools appear without a reload.
      .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
      .multi(true)
      .includeAll(true)
      // database is empty (absent) on probes not tied to one; ".*" keeps those series under "All".
      .allValue(name === 'database' ? '.*' : '.+')
      .current({ selected: true, text: ['All'], value: ['$__all'] })
      .options([])
      .regex('')
      .sort(dashboard.VariableSort.AlphabeticalAsc)
      .hide(dashboard.VariableHide.DontHide)
  );
}

/**
 * A read-only dashboard with the shared variables, links and settings; rows and panels come next.
 * This is Grafana's classic dashboard JSON (schemaVersion 42 in this SDK version), which the SDK
 * now marks deprecated in favour of its v2 resource; the classic JSON is what Grafana provisions
 * from files (the chart's ConfigMaps) on 11.x and 12.x, and what grafana/dashboard-linter reads.
 */
export function poolDashboard(header: DashboardHeader): dashboard.DashboardBuilder {
  const variables: VariableName[] = ['job', 'instance', ...header.filters];
  const builder = new dashboard.DashboardBuilder(header.title)
    .uid(header.uid)
    .description(header.description)
    .tags([TAG, 'neo4j'])
    .timezone('')
    .readonly()
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .version(1)
    .refresh('30s')
    .time({ from: 'now-1h', to: 'now' })
    .fiscalYearStartMonth(0)
    .liveNow(false)
    .weekStart('')
    .annotation(
      new dashboard.AnnotationQueryBuilder()
        .builtIn(1)
        .datasource({ type: 'grafana', uid: '-- Grafana --' })
        .enable(true)
        .hide(true)
        .iconColor('rgba(0, 211, 255, 1)')
        .name('Annotations & Alerts')
        .type('dashboard'),
    )
    .link(
      new dashboard.DashboardLinkBuilder('Neo4j pool dashboards')
        .type(dashboard.DashboardLinkType.Dashboards)
        .tags([TAG])
        .asDropdown(true)
        .includeVars(true)
        .keepTime(true)
        .icon('external link')
        .targetBlank(false)
        .tooltip('')
        .url(''),
    )
    .withVariable(
      new dashboard.DatasourceVariableBuilder('datasource')
        .label('Data source')
        .type('prometheus')
        .hide(dashboard.VariableHide.DontHide)
        .includeAll(false)
        .multi(false)
        .regex(''),
    );
  for (const [index, name] of variables.entries()) builder.withVariable(variable(name, variables.slice(0, index)));
  return builder;
}

/**
 * The dashboard's JSON. Panels (rows included) are numbered in order and queries lettered A, B, ...
 * within each panel, as Grafana would on import. Keys are in alphabetical order, as Grafana writes
 * a dashboard it saves or exports, so the files do not depend on the order the SDK sets fields in.
 */
export function renderDashboard(builder: dashboard.DashboardBuilder): dashboard.Dashboard {
  const built = builder.build();
  // The SDK fills in the only placement Grafana 12's schema names, "inControlsMenu", which moves
  // links and annotation toggles into the dashboard controls dropdown; the schema makes it optional,
  // and without it they stay above the panels, where they are today.
  for (const link of built.links ?? []) delete link.placement;
  for (const annotation of built.annotations?.list ?? []) delete annotation.placement;
  for (const [index, panel] of (built.panels ?? []).entries()) {
    panel.id = index + 1;
    if (panel.type === 'row') continue;
    // cog's Dataquery is any datasource's query; every query has a refId.
    const targets = ((panel as dashboard.Panel).targets ?? []) as Array<{ refId?: string }>;
    for (const [letter, target] of targets.entries()) target.refId ??= String.fromCharCode(65 + letter);
  }
  return sortedKeys(built);
}

function sortedKeys<T>(value: T): T {
  if (Array.isArray(value)) return value.map(sortedKeys) as T;
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(entries.map(([key, inner]) => [key, sortedKeys(inner)])) as T;
}
