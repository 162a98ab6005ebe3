/**
 * Publishes a census analysis as the `neo4j_census_*` series, and removes the series a later census
 * no longer has (a host gone, a connector pair gone).
 */
import { census as censusMetrics } from '../metrics/catalogue.ts';
import type { Recorder } from '../metrics/recorder.ts';
import { type CensusAnalysis, pairLabels } from './census-analysis.ts';

/** The `connector` label of connections that opened and closed between two censuses. */
const UNSEEN_CONNECTOR = 'closed_before_census';

export class CensusPublisher {
  private readonly reported = {
    connections: new Set<string>(),
    hosts: new Set<string>(),
    databases: new Set<string>(),
  };

  constructor(private readonly recorder: Recorder) {}

  publish(analysis: CensusAnalysis): void {
    const recorder = this.recorder;
    const { report } = analysis;

    const connections = recorder.gauge(censusMetrics.connections);
    for (const [key, count] of analysis.pairs) connections.set(pairLabels(key), count);
    for (const key of this.reported.connections) if (!analysis.pairs.has(key)) connections.remove(pairLabels(key));
    this.reported.connections = new Set(analysis.pairs.keys());

    const hosts = recorder.gauge(censusMetrics.clientConnections);
    const seenHosts = new Set(report.connections.byClientHost.map((entry) => entry.host));
    for (const { host, connections: count } of report.connections.byClientHost) hosts.set({ client_host: host }, count);
    for (const host of this.reported.hosts) if (!seenHosts.has(host)) hosts.remove({ client_host: host });
    this.reported.hosts = seenHosts;

    const byAge = recorder.gauge(censusMetrics.connectionsByAge);
    for (const [le, count] of Object.entries(report.age.atMost)) byAge.set({ le }, count);

    const opened = recorder.counter(censusMetrics.connectionsOpened);
    // Binding creates the series at zero on the first census, so increase() sees the first burst too.
    for (const connector of [UNSEEN_CONNECTOR, ...Object.keys(report.connections.byConnector)]) {
      opened.bind({ connector });
    }
    for (const [connector, count] of Object.entries(analysis.openedByConnector)) opened.inc({ connector }, count);
    opened.inc({ connector: UNSEEN_CONNECTOR }, report.opened.closedBeforeCensus);

    recorder.gauge(censusMetrics.seesAllConnections).set({}, report.visibility === 'all' ? 1 : 0);

    // A database whose transactions all finished reports 0, not its last value.
    const longGauge = recorder.gauge(censusMetrics.longTransactions);
    const oldestGauge = recorder.gauge(censusMetrics.oldestTransaction);
    for (const database of new Set([...this.reported.databases, ...analysis.transactionsByDatabase.keys()])) {
      const entry = analysis.transactionsByDatabase.get(database) ?? { long: 0, oldest: 0 };
      longGauge.set({ database }, entry.long);
      oldestGauge.set({ database }, entry.oldest);
      this.reported.databases.add(database);
    }
  }
}
