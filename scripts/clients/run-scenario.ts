/**
 * Runs one scenario with a non-JS Neo4j client (test/clients/python, test/clients/java or
 * test/clients/go) and returns its one-line JSON report, typed. The clients share one CLI and one
 * output contract, so a scenario's result can be compared across clients and between a direct
 * connection and the Bolt proxy. The cluster loops run until told to stop: startClientScenario
 * keeps the client's stdin open and closes it on stop().
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { ensureGoClient, type GoDriverLine } from './go.ts';
import { ensureJavaClient, type JavaDriverLine } from './java.ts';
import { ensurePythonClient, type PythonDriverLine, pythonScenarioScript } from './python.ts';

export type ClientName = 'python' | 'java' | 'go';

/** The pinned driver lines of each client (see python.ts, java.ts and go.ts). */
export interface ClientDriverLines {
  python: PythonDriverLine;
  java: JavaDriverLine;
  go: GoDriverLine;
}
export type DriverLine<C extends ClientName = ClientName> = ClientDriverLines[C];

export const SCENARIO_NAMES = [
  'autocommit',
  'explicit-tx',
  'managed-read',
  'managed-write',
  'failing-query',
  'wrong-password',
  'large-result',
  'concurrent',
  'cluster-spread',
  'cluster-read-loop',
  'cluster-write-loop',
] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

/** The scenarios that run until their stdin is closed (or --duration-ms passes). */
export type ClusterLoopScenario = 'cluster-read-loop' | 'cluster-write-loop';
/** The scenarios that count transactions by the cluster member that served them. */
export type ClusterScenario = 'cluster-spread' | ClusterLoopScenario;
/** The scenarios of one driver behaviour each (a query, an error, a login), run against any server. */
export type BasicScenarioName = Exclude<ScenarioName, ClusterScenario>;

/**
 * The marker queries of the cluster scenarios: every member of the test cluster holds one
 * (:ClusterMember {name}) node (test/support/cluster.ts), so a record names the member that served it.
 */
export const CLUSTER_READ_QUERY = 'MATCH (m:ClusterMember) RETURN m.name AS member';
export const CLUSTER_WRITE_QUERY =
  'CREATE (w:ClusterWrite {id: $id}) WITH w MATCH (m:ClusterMember) RETURN m.name AS member';

export type ClusterAccess = 'read' | 'write';

/** One managed transaction that failed for good, after the driver's own retries. */
export interface ClusterFailure {
  access: ClusterAccess;
  /** The write's id (its outcome is unknown to the client: it may have committed); null for a read. */
  id: string | null;
  /**
   * The driver's exception class; Go reports the last error its TransactionExecutionLimit wraps, as the
   * other drivers throw the last error they met.
   */
  className: string;
  /** Neo4j status code; null for errors not from the server (connection refused, a marker count not 1). */
  code: string | null;
  /** The message's first line. */
  message: string;
  retryable: boolean;
}

export interface ClusterAccessCounts {
  /** Managed transactions started, each counted once however often the driver ran its function. */
  transactions: number;
  /** Of those, the ones that committed (the driver returned their result). */
  committed: number;
  /** Committed transactions by the ClusterMember name their query returned. */
  byMember: Record<string, number>;
}

/**
 * What the cluster scenarios report: managed transactions on the marker queries, each in a new session
 * of one driver. `transactions` = `committed` + the failures of that access mode.
 */
export interface ClusterLoadOutput {
  reads: ClusterAccessCounts;
  writes: ClusterAccessCounts;
  /** Ids of the writes that committed, in the order they did; a write's id is PREFIX-n (--id-prefix). */
  acknowledgedWriteIds: string[];
  failures: ClusterFailure[];
  /** Runs of transaction functions in all (a failure to reach any member runs none). */
  attempts: number;
  /** Transactions whose function ran more than once: the driver retried them. */
  retried: number;
}

/** A cluster loop's progress, printed on stderr after its first transaction and every tenth. */
export interface ClusterLoopProgress {
  /** Transactions that committed or failed for good. */
  completed: number;
  failed: number;
}

/** What each scenario reports when it ran (for `concurrent`, also when some sessions failed). */
export interface ScenarioOutputs {
  /** `RETURN 1 AS value` in an auto-commit transaction. */
  autocommit: { records: number; value: number };
  /** BEGIN, CREATE a probe node, DELETE it, COMMIT. */
  'explicit-tx': {
    queries: number;
    createdIdMatches: boolean;
    deleted: number;
    committed: boolean;
    hasBookmark: boolean;
  };
  /** `RETURN 1 AS value` through execute_read / executeRead. */
  'managed-read': { value: number; database: string };
  /** CREATE and DELETE a probe node through execute_write / executeWrite. */
  'managed-write': { nodesCreated: number; nodesDeleted: number; database: string };
  /** Always fails with a Cypher syntax error: see `error`. */
  'failing-query': Record<string, never>;
  /** Logs in with the given password plus a suffix, so always fails authentication: see `error`. */
  'wrong-password': Record<string, never>;
  /** Streams `rows` rows of `rowBytes`-byte payloads; sha256 over every payload + '\n', in order. */
  'large-result': { rows: number; payloadBytes: number; sha256: string; inOrder: boolean };
  /** `sessions` sessions, each holding an open transaction until all have one, then committing. */
  concurrent: {
    sessions: number;
    succeeded: number;
    failed: number;
    distinctValues: number;
    heldOpenTogether: boolean;
  };
  /** `reads` read and `writes` write transactions, interleaved evenly, over `concurrency` workers. */
  'cluster-spread': ClusterLoadOutput;
  /** Read transactions until stopped. */
  'cluster-read-loop': ClusterLoadOutput;
  /** Write transactions until stopped. */
  'cluster-write-loop': ClusterLoadOutput;
}

export interface ScenarioServerInfo {
  address: string;
  /** e.g. `Neo4j/5.26.30`. */
  agent: string;
  /** Negotiated Bolt version, `major.minor`. */
  protocolVersion: string;
}

export interface ScenarioError {
  /** The driver's exception class: names differ between clients (AuthError vs AuthenticationException). */
  className: string;
  /** Neo4j status code, e.g. `Neo.ClientError.Statement.SyntaxError`; null for errors not from the server. */
  code: string | null;
  /** GQL status; drivers fill in 50N42 when the server sent none (Neo4j 5.26 does not). */
  gqlStatus: string | null;
  gqlStatusDescription: string | null;
  /** GQL status of the cause the server nested under this error, e.g. 42I06 under 42001. */
  causeGqlStatus: string | null;
  /** Second segment of `code`, e.g. `ClientError`. */
  classification: string | null;
  message: string;
  retryable: boolean;
  /** Only for errors that did not come from the server. */
  stack?: string;
}

export interface ScenarioResult<S extends ScenarioName = ScenarioName> {
  client: ClientName;
  scenario: S;
  /** False when the driver raised: `error` says what. Expected for failing-query and wrong-password. */
  ok: boolean;
  driverVersion: string;
  uri: string;
  /** From a result summary, or a follow-up query after a failure; null when no login succeeded. */
  server: ScenarioServerInfo | null;
  durationMs: number;
  result: ScenarioOutputs[S] | null;
  error: ScenarioError | null;
}

/** Scenario tuning; each maps to the CLI flag of the same name in kebab case. */
export interface ScenarioExtraOptions {
  /** Session database; the server default when omitted. */
  database?: string;
  /** large-result: rows to stream (default 5000). */
  rows?: number;
  /** large-result: payload bytes per row (default 1000, so 5 MB in all). */
  rowBytes?: number;
  /** concurrent: sessions held open at once (default 50); cluster-*: workers (default 1). */
  concurrency?: number;
  /** concurrent: how long a session waits for the others (default 60). */
  barrierTimeoutSeconds?: number;
  /** Driver connection timeout (default 10). */
  connectionTimeoutSeconds?: number;
  /** cluster-spread: read transactions (default 300). */
  reads?: number;
  /** cluster-spread: write transactions (default 30). */
  writes?: number;
  /** cluster-*-loop: stop after this long even if stdin stays open. */
  durationMs?: number;
  /** Managed transactions' retry budget (default 30000, the drivers' own default). */
  maxRetryMs?: number;
  /** cluster-*: write ids are PREFIX-0, PREFIX-1, ... (default a random 12 hex digits). */
  idPrefix?: string;
}

export interface RunScenarioOptions<C extends ClientName = ClientName> {
  uri: string;
  user: string;
  password: string;
  extra?: ScenarioExtraOptions;
  /** Which pinned driver line the client uses; 5 by default. */
  driverLine?: DriverLine<C>;
  /** Kills the client after this long (default 180 s). */
  timeoutMs?: number;
}

/**
 * neo4j.conf lines for a server that scenarios run against: without them a few wrong-password runs in
 * a row lock the `neo4j` user for 5 s and the next scenarios fail with AuthenticationRateLimit.
 */
export const SCENARIO_SERVER_CONFIG: Readonly<Record<string, string>> = {
  'dbms.security.auth_max_failed_attempts': '0',
};

const PAYLOAD_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** The sha256 a correct large-result run reports, computed the way both clients do. */
export function expectedLargeResultSha256(rows = 5000, rowBytes = 1000): string {
  const block = PAYLOAD_ALPHABET.repeat(Math.floor(rowBytes / PAYLOAD_ALPHABET.length) + 1).slice(0, rowBytes);
  const hash = createHash('sha256');
  for (let i = 1; i <= rows; i++) {
    hash.update(`${`${i}-${block}`.slice(0, rowBytes)}\n`);
  }
  return hash.digest('hex');
}

function scenarioArguments(scenario: ScenarioName, options: RunScenarioOptions<ClientName>): string[] {
  const args = ['--uri', options.uri, '--user', options.user, '--password', options.password, '--scenario', scenario];
  const extra = options.extra ?? {};
  const flags: [string, string | number | undefined][] = [
    ['--database', extra.database],
    ['--rows', extra.rows],
    ['--row-bytes', extra.rowBytes],
    ['--concurrency', extra.concurrency],
    ['--barrier-timeout', extra.barrierTimeoutSeconds],
    ['--connection-timeout', extra.connectionTimeoutSeconds],
    ['--reads', extra.reads],
    ['--writes', extra.writes],
    ['--duration-ms', extra.durationMs],
    ['--max-retry-ms', extra.maxRetryMs],
    ['--id-prefix', extra.idPrefix],
  ];
  for (const [flag, value] of flags) {
    if (value !== undefined) args.push(flag, String(value));
  }
  return args;
}

/** Installs or builds a client once (cached) and returns how to start it; the scenario flags go after `args`. */
export async function ensureClient<C extends ClientName>(
  client: C,
  driverLine: DriverLine<C> = '5',
): Promise<{ command: string; args: string[] }> {
  // Each branch narrows the client; the line was typed against it by the caller.
  switch (client) {
    case 'python':
      return {
        command: await ensurePythonClient({ driverLine: driverLine as PythonDriverLine }),
        args: [pythonScenarioScript],
      };
    case 'java':
      return ensureJavaClient({ driverLine: driverLine as JavaDriverLine });
    default:
      return ensureGoClient();
  }
}

function isScenarioResult(value: unknown, client: ClientName, scenario: ScenarioName): value is ScenarioResult {
  if (typeof value !== 'object' || value === null) return false;
  const report = value as Record<string, unknown>;
  return (
    report.client === client &&
    report.scenario === scenario &&
    typeof report.ok === 'boolean' &&
    typeof report.driverVersion === 'string' &&
    typeof report.durationMs === 'number' &&
    'result' in report &&
    'error' in report &&
    'server' in report
  );
}

/** A scenario client still running: a cluster loop until stop(). */
export interface RunningScenario<S extends ScenarioName = ScenarioName> {
  /** Resolves once at least `count` transactions completed; rejects if the client ends before. */
  whenCompleted(count: number): Promise<void>;
  /** The last progress the client printed. */
  progress(): ClusterLoopProgress;
  /** Closes the client's stdin, so it finishes the transactions in flight and reports. */
  stop(): Promise<ScenarioResult<S>>;
  /** The report, once the client has ended. */
  readonly report: Promise<ScenarioResult<S>>;
}

/** Callers waiting for a running load to complete a number of transactions. */
export class CompletionWaiters {
  #progress: ClusterLoopProgress = { completed: 0, failed: 0 };
  #waiters = new Set<{ count: number; resolve: () => void; reject: (error: Error) => void }>();
  #ended: Error | undefined;

  get progress(): ClusterLoopProgress {
    return this.#progress;
  }

  update(progress: ClusterLoopProgress): void {
    this.#progress = progress;
    for (const waiter of this.#waiters) {
      if (progress.completed >= waiter.count) {
        this.#waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }

  /** The load has ended: whoever still waits never sees its count. */
  end(describe: () => string): void {
    this.#ended = new Error(`the load ended after ${this.#progress.completed} transactions: ${describe()}`);
    for (const waiter of this.#waiters) waiter.reject(this.#ended);
    this.#waiters.clear();
  }

  whenCompleted(count: number): Promise<void> {
    if (this.#progress.completed >= count) return Promise.resolve();
    if (this.#ended) return Promise.reject(this.#ended);
    return new Promise((resolve, reject) => {
      this.#waiters.add({ count, resolve, reject });
    });
  }
}

function isProgressLine(line: string): boolean {
  return line.startsWith('{"progress":');
}

/**
 * Builds the client if needed (cached) and starts one scenario in a child process with its stdin open;
 * for a cluster loop, stop() closes stdin to end it.
 */
export async function startClientScenario<C extends ClientName, S extends ScenarioName>(
  client: C,
  scenario: S,
  options: RunScenarioOptions<C>,
): Promise<RunningScenario<S>> {
  const { command, args } = await ensureClient<C>(client, options.driverLine ?? '5');
  const timeoutMs = options.timeoutMs ?? 180_000;
  const child = spawn(command, [...args, ...scenarioArguments(scenario, options)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  // A client that ended first has closed its end; stop() then has nothing to tell it.
  child.stdin.on('error', () => {});
  let stdout = '';
  let stderr = '';
  let pendingStderr = '';
  const waiters = new CompletionWaiters();
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (pendingStderr + chunk).split('\n');
    pendingStderr = lines.pop() ?? '';
    for (const line of lines) {
      if (!isProgressLine(line)) {
        stderr = `${stderr}${line}\n`.slice(-8000);
        continue;
      }
      waiters.update((JSON.parse(line) as { progress: ClusterLoopProgress }).progress);
    }
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const exited = new Promise<number | null>((resolveExit, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolveExit(code));
  }).finally(() => clearTimeout(timer));

  const report = exited.then((exitCode) => {
    const describe = () =>
      `${client} ${scenario} (exit ${exitCode}${timedOut ? ', timed out' : ''}): ${(stderr + pendingStderr).trim()}`;
    waiters.end(describe);
    if (timedOut || exitCode !== 0) throw new Error(`scenario client failed: ${describe()}`);
    const lastLine = stdout.trim().split('\n').at(-1) ?? '';
    let parsed: unknown;
    try {
      parsed = JSON.parse(lastLine);
    } catch {
      throw new Error(`scenario client printed no JSON line: ${describe()}\nstdout: ${stdout.slice(-2000)}`);
    }
    if (!isScenarioResult(parsed, client, scenario)) {
      throw new Error(`scenario client printed an unexpected report: ${lastLine.slice(0, 2000)}`);
    }
    return parsed as ScenarioResult<S>;
  });
  // Callers see a failure through stop() or report; a client that fails while nobody awaits either
  // yet must not end the test process as an unhandled rejection.
  report.catch(() => {});
  return {
    whenCompleted: (count) => waiters.whenCompleted(count),
    progress: () => waiters.progress,
    stop: () => {
      child.stdin.end();
      return report;
    },
    report,
  };
}

/** Builds the client if needed (cached), runs one scenario in a child process and parses its report. */
export async function runClientScenario<C extends ClientName, S extends ScenarioName>(
  client: C,
  scenario: S,
  options: RunScenarioOptions<C>,
): Promise<ScenarioResult<S>> {
  const running = await startClientScenario(client, scenario, options);
  // A loop without --duration-ms runs until its stdin ends: here at once. Other scenarios never read it.
  if (options.extra?.durationMs === undefined) void running.stop();
  return running.report;
}
