/**
 * The server's own view of who is connected, once per run: read the server's connection-id counter
 * without logging in (connection-counter.ts), list connections and transactions on the sidecar's
 * pooled driver (census-query.ts), analyse the listing against the previous one
 * (census-analysis.ts, pure) and publish the result (census-metrics.ts). No census costs a login.
 */
import type { Driver } from 'neo4j-driver';
import type { Recorder } from '../metrics/recorder.ts';
import { analyseCensus, type CensusMemory, type CensusReport } from './census-analysis.ts';
import { CensusPublisher } from './census-metrics.ts';
import { listServer } from './census-query.ts';

export type { CensusReport, CensusVisibility, LongTransaction } from './census-analysis.ts';

export interface CensusOptions {
  recorder: Recorder;
  /** Client hosts reported by name; the rest are summed as `other`. */
  topClientHosts: number;
  /** Transactions open longer than this are counted and listed. */
  longTransactionSeconds: number;
  /** Running total of connections the sidecar itself opened to the server; excluded from "opened". */
  ownConnectionsOpened: () => number;
  /** Server-side transaction timeout of the census queries. */
  timeoutMs: number;
}

export interface CensusSources {
  /** The sidecar's pooled driver, which runs the listing queries. */
  driver: Driver;
  /**
   * The id of a connection opened just now (counting itself among the sidecar's own), or undefined
   * when the server cannot tell without a login.
   */
  readCounter: () => Promise<number | undefined>;
}

export class Census {
  private memory: CensusMemory | undefined;
  private lastReport: CensusReport | undefined;
  private running = false;
  private readonly publisher: CensusPublisher;

  constructor(private readonly options: CensusOptions) {
    this.publisher = new CensusPublisher(options.recorder);
  }

  get last(): CensusReport | undefined {
    return this.lastReport;
  }

  /**
   * A run the probe timeout gave up on still finishes in the background; a second one meanwhile
   * would count the same ids again, so it fails at once instead.
   */
  async run(sources: CensusSources): Promise<CensusReport> {
    if (this.running) throw new Error('the previous census is still running');
    this.running = true;
    try {
      return await this.runAlone(sources);
    } finally {
      this.running = false;
    }
  }

  private async runAlone(sources: CensusSources): Promise<CensusReport> {
    // The counter before the listing: every connection opened before it has a lower id, so none is
    // left over for the next census.
    const counter = await sources.readCounter();
    const listing = await listServer(sources.driver, this.options.timeoutMs);
    const analysis = analyseCensus(
      { ...listing, counter, at: Date.now(), ownConnectionsOpened: this.options.ownConnectionsOpened() },
      this.memory,
      this.options,
    );
    this.publisher.publish(analysis);
    this.memory = analysis.memory;
    this.lastReport = analysis.report;
    return analysis.report;
  }
}
