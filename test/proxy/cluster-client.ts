/**
 * The cluster scenarios (scripts/clients/run-scenario.ts: cluster-spread, cluster-read-loop,
 * cluster-write-loop) for the JavaScript driver, in this process, and one ClusterClient interface over
 * it and the Python, Java and Go clients, so a cluster test runs the same load with all four drivers
 * and reads one report shape.
 */
import assert from 'node:assert/strict';
import type { ManagedTransaction } from 'neo4j-driver';
import {
  CLUSTER_READ_QUERY,
  CLUSTER_WRITE_QUERY,
  type ClientName,
  type ClusterAccess,
  type ClusterAccessCounts,
  type ClusterFailure,
  type ClusterLoadOutput,
  type ClusterLoopProgress,
  type ClusterLoopScenario,
  CompletionWaiters,
  type DriverLine,
  ensureClient,
  runClientScenario,
  type ScenarioExtraOptions,
  startClientScenario,
} from '../../scripts/clients/run-scenario.ts';
import {
  type ClientReport,
  type Driver,
  errorReport,
  type JsDriverLine,
  type ResultSummary,
  runWithJsDriver,
  type ScenarioConnection,
} from './js-client.ts';

/** The flags of the cluster scenarios, the same for every client. */
export type ClusterLoadOptions = Pick<
  ScenarioExtraOptions,
  'reads' | 'writes' | 'concurrency' | 'durationMs' | 'maxRetryMs' | 'idPrefix' | 'database'
>;

/** A cluster loop running until stop() (or its durationMs). */
export interface ClusterLoop<S extends ClusterLoopScenario> {
  /** Resolves once at least `count` transactions committed or failed for good; rejects if the loop ends before. */
  whenCompleted(count: number): Promise<void>;
  progress(): ClusterLoopProgress;
  /** Lets the transactions in flight finish (retries included) and returns the report. */
  stop(): Promise<ClientReport<S>>;
  readonly report: Promise<ClientReport<S>>;
}

export interface ClusterClient {
  /** e.g. "go driver 5.x". */
  readonly name: string;
  /** Installs or builds the client (cached). */
  prepare(): Promise<void>;
  spread(connection: ScenarioConnection, options?: ClusterLoadOptions): Promise<ClientReport<'cluster-spread'>>;
  startLoop<S extends ClusterLoopScenario>(
    scenario: S,
    connection: ScenarioConnection,
    options?: ClusterLoadOptions,
  ): Promise<ClusterLoop<S>>;
}

/** A Python, Java or Go client: the scenario runs in a child process (scripts/clients). */
export function processClusterClient<C extends ClientName>(client: C, driverLine: DriverLine<C>): ClusterClient {
  return {
    name: `${client} driver ${driverLine}${driverLine.includes('.') ? '' : '.x'}`,
    prepare: async () => {
      await ensureClient(client, driverLine);
    },
    spread: (connection, options = {}) =>
      runClientScenario(client, 'cluster-spread', { ...connection, driverLine, extra: options }),
    startLoop: (scenario, connection, options = {}) =>
      startClientScenario(client, scenario, { ...connection, driverLine, extra: options }),
  };
}

/** The JavaScript driver of the given line, in this process. */
export function jsClusterClient(driverLine: JsDriverLine): ClusterClient {
  return {
    name: `neo4j-driver ${driverLine}.x (JavaScript)`,
    prepare: async () => {},
    spread: async (connection, options = {}) => {
      const { reads = 300, writes = 30 } = options;
      const order = spreadOrder(reads, writes);
      return runJsClusterLoad(driverLine, 'cluster-spread', connection, options, new CompletionWaiters(), () =>
        order.shift(),
      );
    },
    startLoop: async <S extends ClusterLoopScenario>(
      scenario: S,
      connection: ScenarioConnection,
      options: ClusterLoadOptions = {},
    ) => {
      const access: ClusterAccess = scenario === 'cluster-read-loop' ? 'read' : 'write';
      let stopped = false;
      const timer =
        options.durationMs === undefined
          ? undefined
          : setTimeout(() => {
              stopped = true;
            }, options.durationMs);
      const waiters = new CompletionWaiters();
      const report = runJsClusterLoad(driverLine, scenario, connection, options, waiters, () =>
        stopped ? undefined : access,
      ).finally(() => clearTimeout(timer));
      report.catch(() => {});
      return {
        whenCompleted: (count) => waiters.whenCompleted(count),
        progress: () => waiters.progress,
        stop: () => {
          stopped = true;
          return report;
        },
        report,
      };
    },
  };
}

/** The four drivers of the cluster tests, each on the line most applications run. */
export function defaultClusterClients(): ClusterClient[] {
  return [
    jsClusterClient('6'),
    processClusterClient('python', '5'),
    processClusterClient('java', '5'),
    processClusterClient('go', '5'),
  ];
}

/**
 * The load a cluster scenario reported, after checking the report's own sums (transactions = committed
 * + failures per access mode, members add up to committed, one acknowledged id per committed write).
 */
export function expectClusterLoad(report: ClientReport): ClusterLoadOutput {
  assert.equal(report.ok, true, `expected ${report.client} ${report.scenario} to run: ${JSON.stringify(report)}`);
  assert.equal(report.error, null);
  const load = report.result as ClusterLoadOutput | null;
  assert.ok(load, `${report.client} ${report.scenario} reported no result`);
  const failed = (access: string) => load.failures.filter((failure) => failure.access === access).length;
  for (const [access, counts] of [
    ['read', load.reads],
    ['write', load.writes],
  ] as const) {
    assert.equal(counts.transactions, counts.committed + failed(access), `${access}: ${JSON.stringify(load)}`);
    const byMember = Object.values(counts.byMember).reduce((sum, count) => sum + count, 0);
    assert.equal(byMember, counts.committed, `${access} by member: ${JSON.stringify(counts)}`);
  }
  assert.equal(load.acknowledgedWriteIds.length, load.writes.committed);
  return load;
}

/** Reads and writes interleaved evenly, so a change during the run meets both (as the other clients order them). */
export function spreadOrder(reads: number, writes: number): ClusterAccess[] {
  const total = reads + writes;
  return Array.from({ length: total }, (_, i) =>
    Math.floor(((i + 1) * writes) / total) > Math.floor((i * writes) / total) ? 'write' : 'read',
  );
}

/** A member answered with other than one ClusterMember: the test setting is wrong, not the driver. */
class MarkerError extends Error {
  constructor(members: number) {
    super(`expected one ClusterMember, got ${members}`);
    this.name = 'MarkerError';
  }
}

function emptyCounts(): ClusterAccessCounts {
  return { transactions: 0, committed: 0, byMember: {} };
}

async function runJsClusterLoad<S extends 'cluster-spread' | ClusterLoopScenario>(
  driverLine: JsDriverLine,
  scenario: S,
  connection: ScenarioConnection,
  options: ClusterLoadOptions,
  waiters: CompletionWaiters,
  nextAccess: () => ClusterAccess | undefined,
): Promise<ClientReport<S>> {
  const concurrency = options.concurrency ?? 1;
  const idPrefix = options.idPrefix ?? crypto.randomUUID().replaceAll('-', '').slice(0, 12);
  try {
    return await runWithJsDriver(
      driverLine,
      scenario,
      connection,
      async (driver, note) => {
        const load = new JsClusterLoad(driver, note, options.database, idPrefix, waiters);
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            for (let access = nextAccess(); access !== undefined; access = nextAccess()) {
              await load.runOne(access);
            }
          }),
        );
        return load.output();
      },
      { maxConnectionPoolSize: Math.max(100, concurrency), maxTransactionRetryTime: options.maxRetryMs ?? 30_000 },
    );
  } finally {
    waiters.end(() => `${scenario} with neo4j-driver ${driverLine}.x`);
  }
}

/** The transactions of one run, counted as the other clients count them. */
class JsClusterLoad {
  readonly #counts: Record<ClusterAccess, ClusterAccessCounts> = { read: emptyCounts(), write: emptyCounts() };
  readonly #acknowledged: string[] = [];
  readonly #failures: ClusterFailure[] = [];
  #attempts = 0;
  #retried = 0;
  #nextWrite = 0;

  constructor(
    private readonly driver: Driver,
    private readonly note: (summary: ResultSummary) => void,
    private readonly database: string | undefined,
    private readonly idPrefix: string,
    private readonly waiters: CompletionWaiters,
  ) {}

  async runOne(access: ClusterAccess): Promise<void> {
    const id = access === 'write' ? `${this.idPrefix}-${this.#nextWrite++}` : null;
    let tries = 0;
    const counts = this.#counts[access];
    counts.transactions++;
    const session = this.driver.session({ database: this.database });
    try {
      const work = async (tx: ManagedTransaction) => {
        tries++;
        const result = id === null ? await tx.run(CLUSTER_READ_QUERY) : await tx.run(CLUSTER_WRITE_QUERY, { id });
        if (result.records.length !== 1) throw new MarkerError(result.records.length);
        return { member: String(result.records[0]?.get('member')), summary: result.summary };
      };
      const served = id === null ? await session.executeRead(work) : await session.executeWrite(work);
      this.note(served.summary);
      counts.committed++;
      counts.byMember[served.member] = (counts.byMember[served.member] ?? 0) + 1;
      if (id !== null) this.#acknowledged.push(id);
    } catch (error) {
      const details = errorReport(error);
      this.#failures.push({
        access,
        id,
        className: details.className,
        code: details.code,
        message: details.message.split('\n')[0] ?? '',
        retryable: details.retryable,
      });
    } finally {
      // The transaction's outcome is known already; a close error does not change it.
      await session.close().catch(() => {});
      this.#attempts += tries;
      if (tries > 1) this.#retried++;
      const completed = this.waiters.progress.completed + 1;
      this.waiters.update({ completed, failed: this.#failures.length });
    }
  }

  output(): ClusterLoadOutput {
    return {
      reads: this.#counts.read,
      writes: this.#counts.write,
      acknowledgedWriteIds: this.#acknowledged,
      failures: this.#failures,
      attempts: this.#attempts,
      retried: this.#retried,
    };
  }
}
