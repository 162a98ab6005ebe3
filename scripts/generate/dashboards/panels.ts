/**
 * The house style of the dashboards, on Grafana's own builders (@grafana/grafana-foundation-sdk):
 * panels that query the templated Prometheus datasource, draw alert levels the same way everywhere,
 * and queries built from the metric catalogue with the dashboard's filters.
 *
 * Every panel has a unit and a description and every rate() uses $__rate_interval: the rules of
 * grafana/dashboard-linter, checked in test/deploy/dashboards.test.ts.
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import { alertsSection, type ThresholdKey } from '../../../src/config/alerts.ts';
import type { MetricDefinition } from '../../../src/metrics/definitions.ts';

// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, resolved by Grafana, not JavaScript
export const DATASOURCE: common.DataSourceRef = { type: 'prometheus', uid: '${datasource}' };

/** Units Grafana knows that these dashboards use; the lint rejects any other. */
export type Unit = 'none' | 'Bps' | 'short' | 'percentunit' | 's' | 'ops' | 'cps' | 'bool' | 'bool_yes_no';

// ---------------------------------------------------------------------------------------------
// Queries.

/** The dashboard variables a query can filter on; job and instance are on every dashboard. */
export type VariableName = 'job' | 'instance' | 'pool' | 'database';
export type Filter = Extract<VariableName, 'pool' | 'database'>;

/**
 * A selector for a metric with the dashboard's filters that apply to it: job and instance always,
 * pool and database where the metric has those labels.
 */
export function makeSelect(filters: readonly VariableName[]) {
  return (metric: MetricDefinition, options: { suffix?: string; matchers?: string[] } = {}): string => {
    const matchers = ['job=~"$job"', 'instance=~"$instance"'];
    for (const filter of filters) {
      if ((filter === 'pool' || filter === 'database') && (metric.labelNames as readonly string[]).includes(filter)) {
        matchers.push(`${filter}=~"$${filter}"`);
      }
    }
    matchers.push(...(options.matchers ?? []));
    return `${metric.name}${options.suffix ?? ''}{${matchers.join(', ')}}`;
  };
}

export function quantile(q: number, select: string, by: readonly string[]): string {
  return `histogram_quantile(${q}, sum by (${[...by, 'le'].join(', ')}) (rate(${select}[$__rate_interval])))`;
}

/** Per-second rate of a counter, summed by the given labels. */
export function perSecond(selector: string, by: string): string {
  return `sum by (${by}) (rate(${selector}[$__rate_interval]))`;
}

/** A Prometheus range query drawing one series per label set, named by legendFormat. */
export function rangeQuery(expr: string, legendFormat: string): prometheus.DataqueryBuilder {
  return new prometheus.DataqueryBuilder()
    .datasource(DATASOURCE)
    .expr(expr)
    .legendFormat(legendFormat)
    .range()
    .format(prometheus.PromQueryFormat.TimeSeries)
    .editorMode(prometheus.QueryEditorMode.Code);
}

/** An instant query for stat and table panels: one value per series, not a range. */
export function instantQuery(
  expr: string,
  legendFormat: string,
  format = prometheus.PromQueryFormat.TimeSeries,
): prometheus.DataqueryBuilder {
  return rangeQuery(expr, legendFormat).instant().format(format);
}

/** One range query per quantile of a histogram, legends suffixed p50, p99, ... */
export function quantileQueries(
  quantiles: readonly number[],
  bucketSelector: string,
  by: readonly string[],
  legendPrefix = '',
): prometheus.DataqueryBuilder[] {
  return quantiles.map((q) => rangeQuery(quantile(q, bucketSelector, by), `${legendPrefix}p${q * 100}`));
}

// ---------------------------------------------------------------------------------------------
// Alert levels.

export interface AlertLevels {
  warning: number | null;
  critical: number | null;
}

/** Default alert levels, read from the config schema so the lines move when the defaults do. */
export const thresholds = alertsSection.parse({}).thresholds;

export function alertLevels(key: ThresholdKey): AlertLevels {
  return { warning: thresholds[key].warning, critical: thresholds[key].critical };
}

function thresholdSteps(levels?: AlertLevels): dashboard.ThresholdsConfigBuilder {
  const steps: dashboard.Threshold[] = [{ color: 'green', value: null }];
  if (levels?.warning != null) steps.push({ color: 'orange', value: levels.warning });
  if (levels?.critical != null) steps.push({ color: 'red', value: levels.critical });
  return new dashboard.ThresholdsConfigBuilder().mode(dashboard.ThresholdsMode.Absolute).steps(steps);
}

const colors = (mode: dashboard.FieldColorModeId) => new dashboard.FieldColorBuilder().mode(mode);

// ---------------------------------------------------------------------------------------------
// Panels. Each starts from the SDK's builder for its panel type, so anything Grafana's schema
// allows can still be chained on; the constructors set what every panel of that type shares.

/** What every panel has: the templated datasource, a unit, a size, and no thresholds until asked. */
function shared<P extends timeseries.PanelBuilder | stat.PanelBuilder | table.PanelBuilder>(
  panel: P,
  title: string,
  description: string,
  unit: Unit,
  width: number,
  height: number,
): P {
  panel
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .span(width)
    .height(height)
    .unit(unit)
    .thresholds(thresholdSteps())
    .colorScheme(colors(dashboard.FieldColorModeId.PaletteClassic));
  return panel;
}

/** A time series panel: lines, a shared legend below and a tooltip listing every series. */
export class TimeSeriesPanel extends timeseries.PanelBuilder {
  constructor(title: string, description: string, unit: Unit) {
    super();
    shared(this, title, description, unit, 12, 8)
      .drawStyle(common.GraphDrawStyle.Line)
      .lineWidth(1)
      .fillOpacity(0)
      .showPoints(common.VisibilityMode.Never)
      .spanNulls(false)
      .stacking(new common.StackingConfigBuilder().mode(common.StackingMode.None).group('A'))
      .thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Off))
      .legend(
        new common.VizLegendOptionsBuilder()
          .displayMode(common.LegendDisplayMode.List)
          .placement(common.LegendPlacement.Bottom)
          .showLegend(true),
      )
      .tooltip(
        new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending),
      );
  }

  /** Draws the alert's warning and critical levels as dashed lines. */
  alertLevels(levels: AlertLevels): this {
    return this.thresholds(thresholdSteps(levels)).thresholdsStyle(
      new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Dashed),
    );
  }

  /** Stacks the series with a light fill, for parts of a whole. */
  stacked(): this {
    return this.fillOpacity(20).stacking(
      new common.StackingConfigBuilder().mode(common.StackingMode.Normal).group('A'),
    );
  }
}

/** A single number: the last value of an instant query. */
export class StatPanel extends stat.PanelBuilder {
  constructor(title: string, description: string, unit: Unit) {
    super();
    shared(this, title, description, unit, 4, 4)
      .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).fields('').values(false))
      .colorMode(common.BigValueColorMode.Value)
      .graphMode(common.BigValueGraphMode.None)
      .textMode(common.BigValueTextMode.Auto)
      .justifyMode(common.BigValueJustifyMode.Auto)
      .orientation(common.VizOrientation.Auto);
  }

  /** Colours the whole panel at the alert's warning and critical levels. */
  alertLevels(levels: AlertLevels): this {
    return this.thresholds(thresholdSteps(levels))
      .colorScheme(colors(dashboard.FieldColorModeId.Thresholds))
      .colorMode(common.BigValueColorMode.Background);
  }
}

/** A table of instant-query results, the time column hidden. */
export class TablePanel extends table.PanelBuilder {
  constructor(title: string, description: string, unit: Unit) {
    super();
    shared(this, title, description, unit, 12, 8)
      .showHeader(true)
      .cellHeight(common.TableCellHeight.Sm)
      .footer(new common.TableFooterOptionsBuilder().show(false).reducer(['sum']));
  }

  /** Hides the time column and names the value column. */
  valueColumn(name: string): this {
    return this.withTransformation({
      id: 'organize',
      options: { excludeByName: { Time: true }, renameByName: { Value: name } },
    });
  }
}

export function row(title: string): dashboard.RowBuilder {
  return new dashboard.RowBuilder(title);
}
