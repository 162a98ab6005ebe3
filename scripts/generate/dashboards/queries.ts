/** Neo4j pools / Queries: query rate, latency percentiles and errors by Neo4j status code. */
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import { query, queryStats } from '../../../src/metrics/catalogue.ts';
import { poolDashboard } from './dashboard.ts';
import {
  alertLevels,
  instantQuery,
  makeSelect,
  perSecond,
  quantile,
  quantileQueries,
  rangeQuery,
  row,
  TablePanel,
  TimeSeriesPanel,
} from './panels.ts';

/** How many fingerprints the top-queries panels show. */
const TOP_QUERIES = 10;

/**
 * Adds the normalised text as a `query` label where neo4j_query_fingerprint_info is exported
 * (queryStats.exportText), and keeps the series as they are, by id alone, where it is not.
 */
function withQueryText(expr: string, select: ReturnType<typeof makeSelect>): string {
  const info = `max by (query_id, query) (${select(queryStats.info)})`;
  return `(${expr}) * on (query_id) group_left (query) ${info} or on (query_id) (${expr})`;
}

export function queriesDashboard() {
  const select = makeSelect(['job', 'instance', 'database']);
  const count = (matchers: string[] = []) => select(query.duration, { suffix: '_count', matchers });
  const bucket = select(query.duration, { suffix: '_bucket' });
  const errorRatioBy = 'database, mode, outcome';
  return poolDashboard({
    uid: 'neo4j-pool-queries',
    title: 'Neo4j pools / Queries',
    description:
      'Query rate, latency percentiles and errors by Neo4j status code, from the instrumented drivers and the sidecar.',
    filters: ['database'],
  })
    .withRow(row('Rate and errors'))
    .withPanel(
      new TimeSeriesPanel(
        'Queries per second by source and outcome',
        `Completed queries per second. ${query.duration.help}`,
        'ops',
      )
        .stacked()
        .withTarget(rangeQuery(perSecond(count(), 'source, outcome'), '{{source}} {{outcome}}')),
    )
    .withPanel(
      new TimeSeriesPanel(
        'Queries per second by database and mode',
        'Completed queries per second per database and access mode (read or write).',
        'ops',
      )
        .stacked()
        .withTarget(rangeQuery(perSecond(count(), 'database, mode'), '{{database}} {{mode}}')),
    )
    .withPanel(
      new TimeSeriesPanel(
        'Query error ratio by source',
        "Failed queries divided by all queries, per source, the sidecar's own probe queries excluded: the query-errors alert's measure. Dashed lines: its alert levels.",
        'percentunit',
      )
        .alertLevels(alertLevels('queryErrorRatio'))
        .min(0)
        .max(1)
        .withTarget(
          rangeQuery(
            `sum without (${errorRatioBy}) (rate(${count(['source!="sidecar"', 'outcome="error"'])}[$__rate_interval])) / sum without (${errorRatioBy}) (rate(${count(['source!="sidecar"'])}[$__rate_interval]))`,
            '{{instance}} {{source}}',
          ),
        ),
    )
    .withPanel(
      new TimeSeriesPanel('Errors per second by code', query.errors.help, 'ops')
        .stacked()
        .withTarget(rangeQuery(perSecond(select(query.errors), 'code'), '{{code}}')),
    )
    .withPanel(
      new TablePanel(
        'Errors by source, database and code',
        `${query.errors.help} Totals over the dashboard's time range.`,
        'none',
      )
        .valueColumn('errors')
        .withTarget(
          instantQuery(
            `sum by (source, database, code) (increase(${select(query.errors)}[$__range]))`,
            '{{source}} {{database}} {{code}}',
            prometheus.PromQueryFormat.Table,
          ),
        ),
    )
    .withPanel(
      new TimeSeriesPanel('Queries in flight', query.inFlight.help, 'none')
        .min(0)
        .withTarget(
          rangeQuery(
            `sum by (instance, source) (${makeSelect(['job', 'instance'])(query.inFlight)})`,
            '{{instance}} {{source}}',
          ),
        ),
    )
    .withRow(row('Top queries'))
    .withPanel(
      new TablePanel(
        `Top ${TOP_QUERIES} queries by total time`,
        `Time spent per query fingerprint over the dashboard's time range, heaviest first. ${queryStats.seconds.help} The query column appears with queryStats.exportText; otherwise look an id up with neo4j-pool-sidecar queries or GET /queries.`,
        's',
      )
        .valueColumn('total time')
        .withTarget(
          instantQuery(
            withQueryText(
              `topk(${TOP_QUERIES}, sum by (query_id) (increase(${select(queryStats.seconds)}[$__range])))`,
              select,
            ),
            '{{query_id}} {{query}}',
            prometheus.PromQueryFormat.Table,
          ),
        ),
    )
    .withPanel(
      new TablePanel(
        `Top ${TOP_QUERIES} queries by p95`,
        `${queryStats.quantile.help} The slowest fingerprints by their 95th percentile since the sidecar started or was reset.`,
        's',
      )
        .valueColumn('p95')
        .withTarget(
          instantQuery(
            withQueryText(
              `topk(${TOP_QUERIES}, max by (query_id) (${select(queryStats.quantile, { matchers: ['quantile="0.95"'] })}))`,
              select,
            ),
            '{{query_id}} {{query}}',
            prometheus.PromQueryFormat.Table,
          ),
        ),
    )
    .withPanel(
      new TablePanel(
        `Top ${TOP_QUERIES} queries by errors`,
        `Failed queries per fingerprint over the dashboard's time range, most first. ${queryStats.errors.help}`,
        'none',
      )
        .valueColumn('errors')
        .withTarget(
          instantQuery(
            withQueryText(
              `topk(${TOP_QUERIES}, sum by (query_id) (increase(${select(queryStats.errors)}[$__range])))`,
              select,
            ),
            '{{query_id}} {{query}}',
            prometheus.PromQueryFormat.Table,
          ),
        ),
    )
    .withPanel(
      new TimeSeriesPanel(
        `Query time per second, top ${TOP_QUERIES} fingerprints`,
        'Seconds of query time per second per fingerprint: which queries keep the workers (and their pool connections) busy, over time.',
        's',
      )
        .stacked()
        .withTarget(
          rangeQuery(
            withQueryText(
              `topk(${TOP_QUERIES}, sum by (query_id) (rate(${select(queryStats.seconds)}[$__rate_interval])))`,
              select,
            ),
            '{{query_id}} {{query}}',
          ),
        ),
    )
    .withRow(row('Latency'))
    .withPanel(
      new TimeSeriesPanel(
        'Query latency percentiles',
        `${query.duration.help} Percentiles from the histogram over all selected queries.`,
        's',
      ).targets(quantileQueries([0.5, 0.9, 0.99], bucket, [])),
    )
    .withPanel(
      new TimeSeriesPanel(
        'Query latency p99 by database',
        'The 99th percentile of query time per database.',
        's',
      ).withTarget(rangeQuery(quantile(0.99, bucket, ['database']), '{{database}}')),
    )
    .withPanel(
      new TimeSeriesPanel(
        'Query latency p95 by source and mode',
        'The 95th percentile of query time per source (driver, proxy, sidecar) and mode.',
        's',
      ).withTarget(rangeQuery(quantile(0.95, bucket, ['source', 'mode']), '{{source}} {{mode}}')),
    )
    .withPanel(
      new TimeSeriesPanel(
        'Mean query latency by source',
        'Total query time divided by query count, per source.',
        's',
      ).withTarget(
        rangeQuery(
          `sum by (source) (rate(${select(query.duration, { suffix: '_sum' })}[$__rate_interval])) / sum by (source) (rate(${count()}[$__rate_interval]))`,
          '{{source}}',
        ),
      ),
    );
}
