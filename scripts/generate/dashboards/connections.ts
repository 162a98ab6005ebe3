/**
 * Neo4j pools / Connections: pool connection lifetimes and churn, Bolt proxy clients, pooling, holds and
 * cluster routing, the server's connection census, and the sidecar's probe results.
 */
import { census, pool, probe, proxy, proxyPool, proxyRouting, sidecar } from '../../../src/metrics/catalogue.ts';
import { poolDashboard } from './dashboard.ts';
import {
  alertLevels,
  instantQuery,
  makeSelect,
  perSecond,
  quantileQueries,
  rangeQuery,
  row,
  StatPanel,
  TimeSeriesPanel,
  thresholds,
} from './panels.ts';

export function connectionsDashboard() {
  const select = makeSelect(['job', 'instance', 'pool', 'database']);
  const buckets = (metric: Parameters<typeof select>[0]) => select(metric, { suffix: '_bucket' });
  const churnWindowNote = 'per second over $__rate_interval';
  const byInstanceProbe = '{{instance}} {{probe}} {{database}}';
  return poolDashboard({
    uid: 'neo4j-pool-connections',
    title: 'Neo4j pools / Connections',
    description:
      'Pool connection lifetimes and churn, Bolt proxy clients, pooling, holds and cluster routing, the Neo4j server connection census by client and host, and the sidecar probe results.',
    filters: ['pool', 'database'],
  })
    .withRow(row('Pool connection lifetimes and churn'))
    .withPanel(
      new TimeSeriesPanel(
        'Pool connections opened, closed and failed',
        `Connections per second. Opened: ${pool.created.help} Closed: ${pool.closed.help} Failed: ${pool.failed.help}`,
        'cps',
      )
        .withTarget(rangeQuery(perSecond(select(pool.created), 'pool'), '{{pool}} opened'))
        .withTarget(rangeQuery(perSecond(select(pool.closed), 'pool'), '{{pool}} closed'))
        .withTarget(rangeQuery(perSecond(select(pool.failed), 'pool'), '{{pool}} failed')),
    )
    .withPanel(
      new TimeSeriesPanel('Connection creation time', pool.creationSeconds.help, 's').targets(
        quantileQueries([0.5, 0.99], buckets(pool.creationSeconds), ['pool'], '{{pool}} '),
      ),
    )
    .withPanel(
      new TimeSeriesPanel('Connection checkout time', pool.usageSeconds.help, 's').targets(
        quantileQueries([0.5, 0.99], buckets(pool.usageSeconds), ['pool'], '{{pool}} '),
      ),
    )
    .withRow(row('Bolt proxy clients'))
    .withPanel(
      new TimeSeriesPanel('Proxy client connections', proxy.clientConnectionsActive.help, 'none')
        .min(0)
        .withTarget(rangeQuery(select(proxy.clientConnectionsActive), '{{instance}}')),
    )
    .withPanel(
      new TimeSeriesPanel(
        'Proxy client connections opened and closed',
        `Client connections per second. Opened: ${proxy.clientConnectionsOpened.help} Closed: ${proxy.clientConnectionsClosed.help}`,
        'cps',
      )
        .withTarget(rangeQuery(perSecond(select(proxy.clientConnectionsOpened), 'user_agent'), 'opened {{user_agent}}'))
        .withTarget(rangeQuery(perSecond(select(proxy.clientConnectionsClosed), 'reason'), 'closed {{reason}}')),
    )
    .withPanel(
      new TimeSeriesPanel('Proxy client connection lifetime', proxy.clientConnectionLifetime.help, 's').targets(
        quantileQueries([0.5, 0.99], buckets(proxy.clientConnectionLifetime), ['user_agent'], '{{user_agent}} '),
      ),
    )
    .withPanel(
      new TimeSeriesPanel('Queries per proxy client connection', proxy.queriesPerConnection.help, 'none').targets(
        quantileQueries([0.5, 0.9], buckets(proxy.queriesPerConnection), ['user_agent'], '{{user_agent}} '),
      ),
    )
    .withPanel(
      new TimeSeriesPanel(
        'Proxy connections rejected and logins refused',
        `Per second. Rejected: ${proxy.connectionsRejected.help} Logins refused: ${proxy.authFailures.help}`,
        'cps',
      )
        .withTarget(rangeQuery(perSecond(select(proxy.connectionsRejected), 'reason'), 'rejected {{reason}}'))
        .withTarget(rangeQuery(perSecond(select(proxy.authFailures), 'user_agent'), 'login refused {{user_agent}}')),
    )
    .withPanel(
      new TimeSeriesPanel('Proxy traffic', proxy.bytes.help, 'Bps').withTarget(
        rangeQuery(perSecond(select(proxy.bytes), 'direction'), '{{direction}}'),
      ),
    )
    .withPanel(
      new TimeSeriesPanel('Proxy messages by type', `${proxy.messages.help} Messages per second.`, 'ops').withTarget(
        rangeQuery(perSecond(select(proxy.messages), 'direction, message'), '{{direction}} {{message}}'),
      ),
    )
    .withPanel(
      new TimeSeriesPanel(
        'Proxy connections by Bolt version',
        `${proxy.boltVersions.help} New connections per second.`,
        'cps',
      ).withTarget(rangeQuery(perSecond(select(proxy.boltVersions), 'version'), 'Bolt {{version}}')),
    )
    .withPanel(
      new TimeSeriesPanel('Proxy upstream connect time', proxy.upstreamConnectSeconds.help, 's').targets(
        quantileQueries([0.5, 0.99], buckets(proxy.upstreamConnectSeconds), ['instance'], '{{instance}} '),
      ),
    )
    .withRow(row('Bolt proxy pooling'))
    .withPanel(
      new TimeSeriesPanel('Pooled Neo4j connections by state', proxyPool.upstreams.help, 'none')
        .stacked()
        .withTarget(rangeQuery(`sum by (state) (${select(proxyPool.upstreams)})`, '{{state}}')),
    )
    .withPanel(
      new TimeSeriesPanel('Pool checkouts', `${proxyPool.checkouts.help} Per second.`, 'ops').withTarget(
        rangeQuery(perSecond(select(proxyPool.checkouts), 'result'), '{{result}}'),
      ),
    )
    .withPanel(
      new TimeSeriesPanel(
        'Clients waiting for a pooled connection',
        `${proxyPool.clientsWaiting.help} Dashed lines: the alert levels.`,
        'none',
      )
        .alertLevels(alertLevels('proxyPoolWaiting'))
        .min(0)
        .withTarget(rangeQuery(select(proxyPool.clientsWaiting), '{{instance}}')),
    )
    .withPanel(
      new TimeSeriesPanel('Pool wait time', proxyPool.waitSeconds.help, 's').targets(
        quantileQueries([0.5, 0.99], buckets(proxyPool.waitSeconds), ['instance'], '{{instance}} '),
      ),
    )
    .withPanel(
      new TimeSeriesPanel('Pool logins by outcome', `${proxyPool.logins.help} Per second.`, 'ops').withTarget(
        rangeQuery(perSecond(select(proxyPool.logins), 'outcome'), '{{outcome}}'),
      ),
    )
    .withPanel(
      new TimeSeriesPanel(
        'Pooled connections closed',
        `${proxyPool.upstreamsClosed.help} Per second.`,
        'cps',
      ).withTarget(rangeQuery(perSecond(select(proxyPool.upstreamsClosed), 'reason'), '{{reason}}')),
    )
    .withPanel(
      new TimeSeriesPanel('Reuses per pooled connection', proxyPool.reusesPerUpstream.help, 'none').targets(
        quantileQueries([0.5, 0.99], buckets(proxyPool.reusesPerUpstream), ['instance'], '{{instance}} '),
      ),
    )
    .withRow(row('Bolt proxy holds and maintenance'))
    .withPanel(
      new TimeSeriesPanel(
        'Clients held',
        `${proxyPool.clientsHeld.help} Dashed lines: the clients-held alert levels.`,
        'none',
      )
        .alertLevels(alertLevels('proxyClientsHeld'))
        .min(0)
        .withTarget(
          rangeQuery(`sum by (instance, reason) (${select(proxyPool.clientsHeld)})`, '{{instance}} {{reason}}'),
        ),
    )
    .withPanel(
      new TimeSeriesPanel(
        `Holds timed out per ${thresholds.proxyHoldTimeouts.window}`,
        `${proxyPool.holds.help} Counted over ${thresholds.proxyHoldTimeouts.window}, the alert's window. Dashed lines: the hold-timeouts alert levels.`,
        'none',
      )
        .alertLevels(alertLevels('proxyHoldTimeouts'))
        .min(0)
        .withTarget(
          rangeQuery(
            `sum by (instance, reason) (increase(${select(proxyPool.holds, { matchers: ['outcome="timed_out"'] })}[${thresholds.proxyHoldTimeouts.window}]))`,
            '{{instance}} {{reason}}',
          ),
        ),
    )
    .withPanel(
      new TimeSeriesPanel('Holds ended by outcome', `${proxyPool.holds.help} Per second.`, 'ops').withTarget(
        rangeQuery(perSecond(select(proxyPool.holds), 'reason, outcome'), '{{reason}} {{outcome}}'),
      ),
    )
    .withPanel(
      new TimeSeriesPanel('Hold duration', proxyPool.holdSeconds.help, 's').targets(
        quantileQueries(
          [0.5, 0.99],
          buckets(proxyPool.holdSeconds),
          ['instance', 'reason'],
          '{{instance}} {{reason}} ',
        ),
      ),
    )
    .withPanel(
      new TimeSeriesPanel(
        'Paused for',
        `How long the current pause has lasted (${proxyPool.pausedSince.name}); nothing while not paused. Dashed lines: the paused-too-long alert levels.`,
        's',
      )
        .alertLevels(alertLevels('proxyPaused'))
        .min(0)
        .withTarget(rangeQuery(`time() - (${select(proxyPool.pausedSince)} > 0)`, '{{instance}}')),
    )
    .withPanel(
      new TimeSeriesPanel(
        `Pauses ended by the maximum per ${thresholds.proxyPauseExpired.window}`,
        `${proxyPool.pausesExpired.help} Counted over ${thresholds.proxyPauseExpired.window}, the alert's window. Dashed lines: the pause-expired alert levels.`,
        'none',
      )
        .alertLevels(alertLevels('proxyPauseExpired'))
        .min(0)
        .withTarget(
          rangeQuery(
            `sum by (instance) (increase(${select(proxyPool.pausesExpired)}[${thresholds.proxyPauseExpired.window}]))`,
            '{{instance}}',
          ),
        ),
    )
    .withPanel(
      new TimeSeriesPanel(
        `Idle-transaction kills per ${thresholds.proxyIdleTransactionTimeouts.window}`,
        `${proxy.idleTransactionTimeouts.help} Counted over ${thresholds.proxyIdleTransactionTimeouts.window}, the alert's window. Dashed lines: the idle-transaction alert levels.`,
        'none',
      )
        .alertLevels(alertLevels('proxyIdleTransactionTimeouts'))
        .min(0)
        .withTarget(
          rangeQuery(
            `sum by (instance, user_agent) (increase(${select(proxy.idleTransactionTimeouts)}[${thresholds.proxyIdleTransactionTimeouts.window}]))`,
            '{{instance}} {{user_agent}}',
          ),
        ),
    )
    .withPanel(
      new TimeSeriesPanel('Neo4j reachable from the pool', proxyPool.neo4jReachable.help, 'none')
        .min(0)
        .max(1)
        .withTarget(rangeQuery(select(proxyPool.neo4jReachable), '{{instance}}')),
    )
    .withRow(row('Bolt proxy cluster routing'))
    .withPanel(
      new TimeSeriesPanel(
        'Units of work by member and access',
        `${proxyRouting.units.help} Per second; empty unless the upstream is neo4j:// or neo4j+s:// in transaction mode.`,
        'ops',
      ).withTarget(rangeQuery(perSecond(select(proxyRouting.units), 'member, access'), '{{member}} {{access}}')),
    )
    .withPanel(
      new TimeSeriesPanel('Member upstreams by state', proxyRouting.memberUpstreams.help, 'none')
        .stacked()
        .withTarget(
          rangeQuery(`sum by (member, state) (${select(proxyRouting.memberUpstreams)})`, '{{member}} {{state}}'),
        ),
    )
    .withPanel(
      new TimeSeriesPanel('Members by role', `${proxyRouting.members.help} Per sidecar.`, 'none')
        .min(0)
        .withTarget(rangeQuery(select(proxyRouting.members), '{{instance}} {{role}}')),
    )
    .withPanel(
      new TimeSeriesPanel(
        'Routing-table refreshes by reason',
        `${proxyRouting.refreshes.help} Per second.`,
        'ops',
      ).withTarget(rangeQuery(perSecond(select(proxyRouting.refreshes), 'reason, outcome'), '{{reason}} {{outcome}}')),
    )
    .withPanel(
      new TimeSeriesPanel(
        `Failovers by role per ${thresholds.proxyRoutingFailovers.window}`,
        `${proxyRouting.failovers.help} Counted over ${thresholds.proxyRoutingFailovers.window}, the alert's window. Dashed lines: the routing-failovers alert levels.`,
        'none',
      )
        .alertLevels(alertLevels('proxyRoutingFailovers'))
        .min(0)
        .withTarget(
          rangeQuery(
            `sum by (instance, role) (increase(${select(proxyRouting.failovers)}[${thresholds.proxyRoutingFailovers.window}]))`,
            '{{instance}} {{role}}',
          ),
        ),
    )
    .withPanel(
      new TimeSeriesPanel('Member reachable', proxyRouting.memberReachable.help, 'none')
        .min(0)
        .max(1)
        .withTarget(rangeQuery(select(proxyRouting.memberReachable), '{{instance}} {{member}}')),
    )
    .withRow(row('Server census'))
    .withPanel(
      new TimeSeriesPanel('Server connections by client', census.connections.help, 'none')
        .stacked()
        .withTarget(
          rangeQuery(
            `max by (connector, user_agent_family) (${select(census.connections)})`,
            '{{user_agent_family}} ({{connector}})',
          ),
        ),
    )
    .withPanel(
      new TimeSeriesPanel('Server connections by client host', census.clientConnections.help, 'none')
        .stacked()
        .withTarget(rangeQuery(`max by (client_host) (${select(census.clientConnections)})`, '{{client_host}}')),
    )
    .withPanel(
      new TimeSeriesPanel(
        'New connections per second',
        `The connection-churn alert's two measures: connections the Neo4j server accepted (${census.connectionsOpened.help}) and client connections the Bolt proxy accepted, per client family. Shown ${churnWindowNote}; dashed lines: the alert levels.`,
        'cps',
      )
        .alertLevels(alertLevels('connectionChurn'))
        .min(0)
        .withTarget(
          rangeQuery(
            `sum without (connector) (rate(${select(census.connectionsOpened)}[$__rate_interval]))`,
            '{{instance}} server',
          ),
        )
        .withTarget(
          rangeQuery(
            `rate(${select(proxy.clientConnectionsOpened)}[$__rate_interval])`,
            '{{instance}} proxy {{user_agent}}',
          ),
        ),
    )
    .withPanel(
      new TimeSeriesPanel('Server connections by age', census.connectionsByAge.help, 'none').withTarget(
        rangeQuery(`max by (le) (${select(census.connectionsByAge)})`, 'at most {{le}} s old'),
      ),
    )
    .withPanel(
      new StatPanel('Census sees every connection', census.seesAllConnections.help, 'bool_yes_no').withTarget(
        instantQuery(`min(${select(census.seesAllConnections)})`, 'sees all'),
      ),
    )
    .withPanel(
      new TimeSeriesPanel(
        'Oldest open transaction',
        `${census.oldestTransaction.help} Dashed lines: the long-running-transaction alert levels.`,
        's',
      )
        .alertLevels(alertLevels('longRunningTransactions'))
        .min(0)
        .span(10)
        .withTarget(rangeQuery(`max by (database) (${select(census.oldestTransaction)})`, '{{database}}')),
    )
    .withPanel(
      new TimeSeriesPanel('Long-running transactions', census.longTransactions.help, 'none')
        .min(0)
        .span(10)
        .withTarget(rangeQuery(`max by (database) (${select(census.longTransactions)})`, '{{database}}')),
    )
    .withRow(row('Probes'))
    .withPanel(
      new TimeSeriesPanel('Probe results', `${probe.up.help} Per probe and database.`, 'bool')
        .min(0)
        .max(1)
        .withTarget(rangeQuery(select(probe.up), byInstanceProbe)),
    )
    .withPanel(
      new TimeSeriesPanel('Probe duration', probe.duration.help, 's')
        .min(0)
        .withTarget(rangeQuery(select(probe.duration), byInstanceProbe)),
    )
    .withPanel(
      new TimeSeriesPanel(
        'Time since last probe success, beyond its interval',
        `Now minus ${probe.lastSuccess.name} minus ${probe.interval.name}: below zero while a probe is not yet due again. Dashed lines: the probe-down alert levels.`,
        's',
      )
        .alertLevels(alertLevels('probeDown'))
        .withTarget(rangeQuery(`time() - ${select(probe.lastSuccess)} - ${select(probe.interval)}`, byInstanceProbe)),
    )
    .withPanel(
      new TimeSeriesPanel('Probe failures by reason', `${probe.failures.help} Failures per second.`, 'ops')
        .min(0)
        .withTarget(rangeQuery(perSecond(select(probe.failures), 'probe, reason'), '{{probe}} {{reason}}')),
    )
    .withPanel(
      new TimeSeriesPanel(
        "Time Neo4j has refused the sidecar's credentials",
        `Now minus ${sidecar.credentialsRejectedSince.name} while ${sidecar.credentialsRejected.name} is 1, else 0: while refused the sidecar measures nothing and does not log in again until a retry is due or the password file changes. Dashed lines: the credentials-rejected alert levels.`,
        's',
      )
        .alertLevels(alertLevels('credentialsRejected'))
        .min(0)
        .withTarget(
          rangeQuery(
            `(time() - ${select(sidecar.credentialsRejectedSince)}) * ${select(sidecar.credentialsRejected)}`,
            '{{instance}}',
          ),
        ),
    );
}
