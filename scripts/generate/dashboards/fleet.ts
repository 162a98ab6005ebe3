/** Neo4j pools / Fleet overview: how many pools, how full, how long callers wait, which alerts fire. */
import { alerts, pool, probe, sizing } from '../../../src/metrics/catalogue.ts';
import { poolDashboard } from './dashboard.ts';
import {
  alertLevels,
  instantQuery,
  makeSelect,
  quantile,
  quantileQueries,
  rangeQuery,
  row,
  StatPanel,
  TimeSeriesPanel,
  thresholds,
} from './panels.ts';

export function fleetDashboard() {
  const select = makeSelect(['job', 'instance', 'pool']);
  const perPod = `count by (instance, pool) (${select(pool.max)})`;
  const timeoutWindow = thresholds.acquisitionTimeouts.window;
  const acquisitionBuckets = select(pool.acquisitionSeconds, { suffix: '_bucket' });
  return poolDashboard({
    uid: 'neo4j-pool-fleet',
    title: 'Neo4j pools / Fleet overview',
    description:
      'Every Neo4j driver pool the sidecars and instrumented workers report: how many, how full, how long callers wait, and which alerts fire.',
    filters: ['pool'],
  })
    .withRow(row('Fleet'))
    .withPanel(
      new StatPanel(
        'Pods reporting pools',
        `Instances (pods) that export ${pool.max.name}: sidecars and instrumented workers.`,
        'none',
      ).withTarget(instantQuery(`count(count by (instance) (${select(pool.max)}))`, 'pods')),
    )
    .withPanel(
      new StatPanel(
        'Pools',
        'Distinct (instance, pool) pairs: one per driver instance in each pod.',
        'none',
      ).withTarget(instantQuery(`count(${perPod})`, 'pools')),
    )
    .withPanel(
      new StatPanel('Connections in use', pool.inUse.help, 'none').withTarget(
        instantQuery(`sum(${select(pool.inUse)})`, 'in use'),
      ),
    )
    .withPanel(
      new StatPanel(
        'Callers waiting',
        `${pool.acquiring.help} Coloured at the pending-acquisitions alert levels.`,
        'none',
      )
        .alertLevels(alertLevels('pendingAcquisitions'))
        .withTarget(instantQuery(`sum(${select(pool.acquiring)})`, 'waiting')),
    )
    .withPanel(
      new StatPanel(
        'Acquisition timeouts',
        `${pool.acquisitionTimeouts.help} Total over the dashboard's time range.`,
        'none',
      )
        .alertLevels({ warning: 1, critical: null })
        .withTarget(instantQuery(`sum(increase(${select(pool.acquisitionTimeouts)}[$__range]))`, 'timeouts')),
    )
    .withPanel(
      new StatPanel(
        'Alerts active',
        `${alerts.active.help} The sidecar evaluates the same thresholds as the Prometheus rules.`,
        'none',
      )
        .alertLevels({ warning: 1, critical: null })
        .withTarget(instantQuery(`sum(${select(alerts.active)})`, 'active')),
    )
    .withRow(row('Pools and utilization'))
    .withPanel(
      new TimeSeriesPanel(
        'Pools per pod',
        'Driver pools each instance reports. More than one or two per pod usually means drivers created per task.',
        'none',
      ).withTarget(rangeQuery(`count by (instance) (${perPod})`, '{{instance}}')),
    )
    .withPanel(
      new TimeSeriesPanel(
        'Pool utilization',
        'Connections in use divided by the pool size (maxConnectionPoolSize), per pool and server address. Dashed lines: the pool-utilization alert levels.',
        'percentunit',
      )
        .alertLevels(alertLevels('poolUtilization'))
        .min(0)
        .max(1)
        .withTarget(rangeQuery(`${select(pool.inUse)} / ${select(pool.max)}`, '{{instance}} {{pool}} {{address}}')),
    )
    .withPanel(
      new TimeSeriesPanel(
        'Connections by state',
        'Pool connections in use, idle and being created, summed over pods and addresses.',
        'none',
      )
        .stacked()
        .withTarget(rangeQuery(`sum by (pool) (${select(pool.inUse)})`, '{{pool}} in use'))
        .withTarget(rangeQuery(`sum by (pool) (${select(pool.idle)})`, '{{pool}} idle'))
        .withTarget(rangeQuery(`sum by (pool) (${select(pool.creating)})`, '{{pool}} creating')),
    )
    .withPanel(
      new TimeSeriesPanel(
        'Callers waiting for a connection',
        `${pool.acquiring.help} Dashed lines: the pending-acquisitions alert levels.`,
        'none',
      )
        .alertLevels(alertLevels('pendingAcquisitions'))
        .min(0)
        .withTarget(rangeQuery(select(pool.acquiring), '{{instance}} {{pool}} {{address}}')),
    )
    .withPanel(
      new TimeSeriesPanel('Connections needed vs. pool size', sizing.needed.help, 'none')
        .min(0)
        .withTarget(rangeQuery(`max by (pool) (${select(sizing.needed)})`, '{{pool}} needed'))
        .withTarget(rangeQuery(`max by (pool) (${select(pool.max)})`, '{{pool}} max')),
    )
    .withRow(row('Acquisition'))
    .withPanel(
      new TimeSeriesPanel(
        'Acquisition latency percentiles',
        `${pool.acquisitionSeconds.help} Percentiles over all selected pools.`,
        's',
      ).targets(quantileQueries([0.5, 0.95, 0.99], acquisitionBuckets, [])),
    )
    .withPanel(
      new TimeSeriesPanel(
        'Acquisition latency p99 by pool',
        'The 99th percentile of acquisition time per pod and pool: which pool makes callers wait.',
        's',
      ).withTarget(rangeQuery(quantile(0.99, acquisitionBuckets, ['instance', 'pool']), '{{instance}} {{pool}}')),
    )
    .withPanel(
      new TimeSeriesPanel(
        'Acquisition probe duration',
        "How long the sidecar's acquisition probe took to get a connection from its own pool. Dashed lines: the acquisition-latency alert levels.",
        's',
      )
        .alertLevels(alertLevels('acquisitionLatency'))
        .min(0)
        .withTarget(
          rangeQuery(select(probe.duration, { matchers: ['probe="acquisition"'] }), '{{instance}} {{database}}'),
        ),
    )
    .withPanel(
      new TimeSeriesPanel(
        `Acquisition timeouts per ${timeoutWindow}`,
        `${pool.acquisitionTimeouts.help} Counted over ${timeoutWindow}, the alert's window. Dashed lines: the acquisition-timeouts alert levels.`,
        'none',
      )
        .alertLevels(alertLevels('acquisitionTimeouts'))
        .min(0)
        .withTarget(
          rangeQuery(
            `sum by (instance, pool) (increase(${select(pool.acquisitionTimeouts)}[${timeoutWindow}]))`,
            '{{instance}} {{pool}}',
          ),
        ),
    )
    .withPanel(
      new TimeSeriesPanel('Failed connection attempts', pool.failed.help, 'cps')
        .min(0)
        .withTarget(
          rangeQuery(
            `sum by (instance, pool) (rate(${select(pool.failed)}[$__rate_interval]))`,
            '{{instance}} {{pool}}',
          ),
        ),
    )
    .withRow(row('Alerts'))
    .withPanel(
      new TimeSeriesPanel('Alerts active by name', `${alerts.active.help} One series per alert and severity.`, 'none')
        .min(0)
        .span(24)
        .withTarget(rangeQuery(`max by (alert, severity) (${select(alerts.active)})`, '{{alert}} ({{severity}})')),
    );
}
