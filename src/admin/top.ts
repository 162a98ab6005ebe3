/**
 * `neo4j-pool-sidecar top [--once] [--interval SECONDS] [--url URL]`: one screen about the running
 * sidecar, refreshed every interval, for `kubectl exec`: whether the pool is paused and for how long,
 * upstreams by state and key, clients by state (waiting and held among them), the queries that took
 * the most time over the last interval (the difference of two GET /queries reads), and the alerts
 * firing (the alerts section of /status). A terminal gets the screen cleared with ANSI codes before
 * each frame; without one (a pipe, `kubectl exec` without -t) frames follow each other as plain text.
 *
 * renderTop is a pure function of what the endpoints answered, so the layout is tested without a sidecar.
 */
import type { SidecarConfig } from '../config/index.ts';
import { type CliIo, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type ExtraCommand } from '../contracts.ts';
import { CLIENT_STATES, type ClientsView, type ClientView, type PoolsView, UPSTREAM_STATES } from '../proxy/index.ts';
import type { QueryStatsRow, QueryStatsSnapshot } from '../querystats/index.ts';
import { parseUrlOption, type SidecarClient, SidecarError, sidecarClient } from './sidecar-client.ts';

/** What one frame is drawn from: each endpoint's answer, or why it had none (a part that is off). */
export interface TopReading {
  readonly url: string;
  /** When the reading was taken (ms since the epoch). */
  readonly atMs: number;
  readonly status: Readonly<Record<string, unknown>>;
  readonly pools: PoolsView | string;
  readonly clients: ClientsView | string;
  readonly queries: QueryStatsSnapshot | string;
}

/** One query's share of the interval between two readings. */
export interface IntervalQuery {
  readonly id: string;
  readonly database: string;
  readonly query: string;
  readonly calls: number;
  readonly errors: number;
  readonly seconds: number;
}

interface FiringAlert {
  alert: string;
  severity: string;
  labels?: Record<string, string>;
  value?: number;
  firingSince?: string;
  activeSince?: string;
}

const CLEAR_SCREEN = '\x1b[H\x1b[2J';
const WIDTH = 100;
const MAX_CLIENT_ROWS = 15;
const MAX_QUERY_ROWS = 8;
const QUERY_ROWS_READ = 1000;

/**
 * Queries by time spent between `previous` and `current`: the growth of each row's total; a row new
 * since `previous` counts whole. After a reset (another `since`) the current figures are the interval's.
 */
export function queriesOverInterval(
  previous: QueryStatsSnapshot | undefined,
  current: QueryStatsSnapshot,
): IntervalQuery[] {
  const before = new Map<string, QueryStatsRow>();
  if (previous !== undefined && previous.since === current.since) {
    for (const row of previous.queries) before.set(`${row.id}\u0000${row.database}`, row);
  }
  const rows: IntervalQuery[] = [];
  for (const row of current.queries) {
    const old = before.get(`${row.id}\u0000${row.database}`);
    const calls = row.calls - (old?.calls ?? 0);
    const seconds = row.totalSeconds - (old?.totalSeconds ?? 0);
    if (calls <= 0 && seconds <= 0) continue;
    rows.push({
      id: row.id,
      database: row.database,
      query: row.query,
      calls: Math.max(0, calls),
      errors: Math.max(0, row.errors - (old?.errors ?? 0)),
      seconds: Math.max(0, seconds),
    });
  }
  return rows.sort((a, b) => b.seconds - a.seconds || b.calls - a.calls);
}

function duration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(Math.floor(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

function cut(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

/** Left-aligned columns, numbers right-aligned, two spaces apart. */
function table(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string[] {
  const cells = rows.map((row) => row.map(String));
  const widths = headers.map((header, i) => Math.max(header.length, ...cells.map((row) => row[i]!.length)));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((row) => typeof row[i] === 'number'));
  const line = (values: readonly string[]) =>
    `  ${values.map((value, i) => (numeric[i] ? value.padStart(widths[i]!) : value.padEnd(widths[i]!))).join('  ')}`.trimEnd();
  return [line(headers), ...cells.map(line)];
}

function counts(record: Readonly<Record<string, number>>, names: readonly string[]): string {
  return names.map((name) => `${name} ${record[name] ?? 0}`).join('  ');
}

function section<T>(value: T | string, draw: (value: T) => string[]): string[] {
  return typeof value === 'string' ? [`  (${value})`] : draw(value);
}

function firingAlerts(status: Readonly<Record<string, unknown>>): FiringAlert[] | string {
  const alerts = status.alerts as { active?: FiringAlert[] } | undefined;
  if (alerts === undefined || !Array.isArray(alerts.active))
    return 'the alerts component is off (alerts.enabled: false)';
  return alerts.active;
}

function clientRows(view: ClientsView): ClientView[] {
  // What an operator looks for first: held and waiting clients, then the longest in their state.
  const rank = (client: ClientView) => (client.state === 'held' ? 0 : client.state === 'waiting' ? 1 : 2);
  return [...view.clients]
    .sort((a, b) => rank(a) - rank(b) || b.stateSeconds - a.stateSeconds)
    .slice(0, MAX_CLIENT_ROWS);
}

/** One frame of `top`; `previous` is the reading one interval earlier (for the queries' differences). */
export function renderTop(current: TopReading, previous?: TopReading): string {
  const status = current.status;
  const proxy = status.proxy as { listen?: string; upstream?: string; activeConnections?: number } | undefined;
  const lines: string[] = [];
  lines.push(
    cut(
      `neo4j-pool-sidecar ${String(status.version ?? '?')} at ${current.url}  up ${duration(Number(status.uptimeSeconds ?? 0))}  ${new Date(current.atMs).toISOString().replace(/\.\d+Z$/, 'Z')}`,
      WIDTH,
    ),
  );
  if (proxy === undefined) lines.push('proxy: off (proxy.enabled: false)');
  else lines.push(cut(`proxy: ${proxy.listen ?? '?'} -> ${proxy.upstream ?? '?'}`, WIDTH));

  const pools = current.pools;
  if (typeof pools === 'string') lines.push(`pool: ${pools}`);
  else {
    const pause = pools.paused
      ? `PAUSED for ${duration(pools.pausedSeconds)} (released by itself after ${duration(pools.maxPauseSeconds)})`
      : 'not paused';
    lines.push(
      `pool: ${pools.mode} mode  ${pause}  Neo4j ${pools.neo4jReachable ? 'reachable' : 'UNREACHABLE (clients held)'}`,
    );
    lines.push(
      `upstreams  ${counts(pools.upstreams, UPSTREAM_STATES)}  (lent ${pools.lent}, max ${pools.maxUpstreams})`,
    );
    lines.push(`waits      waiting ${pools.waiting}  held ${pools.held}`);
  }

  lines.push('', 'clients');
  lines.push(
    ...section(current.clients, (view) => [
      `  ${view.total} connected: ${counts(view.byState, CLIENT_STATES)}`,
      ...(view.clients.length === 0
        ? []
        : table(
            ['ID', 'REMOTE', 'DRIVER', 'STATE', 'FOR', 'QUERIES'],
            clientRows(view).map((client) => [
              client.id,
              client.remote,
              cut(client.userAgent, 24),
              client.state,
              duration(client.stateSeconds),
              client.queries,
            ]),
          )),
      ...(view.clients.length > MAX_CLIENT_ROWS ? [`  ... and ${view.clients.length - MAX_CLIENT_ROWS} more`] : []),
    ]),
  );

  if (typeof pools !== 'string' && pools.keys.length > 0) {
    lines.push('', 'upstreams by key');
    lines.push(
      ...table(
        ['KEY', 'BOLT', ...UPSTREAM_STATES.map((state) => state.toUpperCase())],
        pools.keys.map((key) => [key.key, key.bolt, ...UPSTREAM_STATES.map((state) => key.upstreams[state])]),
      ),
    );
  }

  const interval = previous === undefined ? undefined : (current.atMs - previous.atMs) / 1000;
  lines.push(
    '',
    interval === undefined ? 'top queries (since start)' : `top queries by time over the last ${interval.toFixed(1)} s`,
  );
  lines.push(
    ...section(current.queries, (snapshot) => {
      const earlier = previous === undefined || typeof previous.queries === 'string' ? undefined : previous.queries;
      const rows = queriesOverInterval(earlier, snapshot).slice(0, MAX_QUERY_ROWS);
      if (rows.length === 0) return ['  (no queries in this interval)'];
      return table(
        ['ID', 'DATABASE', 'CALLS', 'TIME_MS', 'ERRORS', 'QUERY'],
        rows.map((row) => [
          row.id,
          row.database,
          row.calls,
          Math.round(row.seconds * 1000),
          row.errors,
          cut(row.query, 48),
        ]),
      );
    }),
  );

  const alerts = firingAlerts(status);
  lines.push(
    '',
    `alerts firing: ${typeof alerts === 'string' ? alerts : alerts.length === 0 ? 'none' : alerts.length}`,
  );
  if (typeof alerts !== 'string') {
    for (const alert of alerts) {
      const labels = Object.entries(alert.labels ?? {})
        .filter(([name]) => name !== 'alertname' && name !== 'severity')
        .map(([name, value]) => `${name}=${value}`)
        .join(' ');
      lines.push(
        cut(
          `  ${alert.severity.toUpperCase()} ${alert.alert}${labels ? ` {${labels}}` : ''} since ${alert.firingSince ?? alert.activeSince ?? '?'}`,
          WIDTH,
        ),
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

/** One reading of every endpoint top draws from; a part that is off gives its reason instead. */
export async function readTop(client: SidecarClient, now: () => number = Date.now): Promise<TopReading> {
  const or = <T>(answer: { body: T } | { notFound: string }): T | string =>
    'body' in answer ? answer.body : answer.notFound;
  const [status, pools, clients, queries] = await Promise.all([
    client.get<Record<string, unknown>>('/status'),
    client.get<PoolsView>('/proxy/pools'),
    client.get<ClientsView>('/proxy/clients'),
    client.get<QueryStatsSnapshot>(`/queries?sort=total&limit=${QUERY_ROWS_READ}`),
  ]);
  if ('notFound' in status) throw new SidecarError(`/status answered 404: ${status.notFound}`);
  return {
    url: client.url,
    atMs: now(),
    status: status.body,
    pools: or(pools),
    clients: or(clients),
    queries: or(queries),
  };
}

interface TopArgs {
  once: boolean;
  intervalMs: number;
  url?: string;
}

export function parseTopArgs(args: readonly string[]): TopArgs | string {
  const parsed: TopArgs = { once: false, intervalMs: 1000 };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [name, inline] = arg.startsWith('--') && arg.includes('=') ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    const value = () => inline ?? args[++i];
    if (name === '--once') parsed.once = true;
    else if (name === '--interval') {
      const seconds = Number(value());
      if (!Number.isFinite(seconds) || seconds < 0.2 || seconds > 3600)
        return '--interval must be from 0.2 to 3600 seconds';
      parsed.intervalMs = seconds * 1000;
    } else if (name === '--url') {
      const url = parseUrlOption(value());
      if (typeof url === 'string') return url;
      parsed.url = url.url;
    } else return `unknown option ${arg} for top`;
  }
  return parsed;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Until SIGINT or SIGTERM, or one frame with --once (two readings one interval apart, for the differences). */
export const topCommand: ExtraCommand = Object.assign(
  async (config: SidecarConfig, io: CliIo, args: readonly string[]): Promise<number> => {
    const parsed = parseTopArgs(args);
    if (typeof parsed === 'string') {
      io.stderr(`neo4j-pool-sidecar: ${parsed}\n`);
      return EXIT_USAGE;
    }
    const client = sidecarClient(config, parsed.url);
    let stopped = false;
    const stop = () => {
      stopped = true;
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const clear = process.stdout.isTTY === true ? CLEAR_SCREEN : '';
    try {
      let previous = await readTop(client);
      await sleep(parsed.intervalMs);
      while (!stopped) {
        const current = await readTop(client);
        io.stdout(`${clear}${renderTop(current, previous)}${clear === '' && !parsed.once ? '\n' : ''}`);
        if (parsed.once) break;
        previous = current;
        await sleep(parsed.intervalMs);
      }
      return EXIT_OK;
    } catch (error) {
      if (!(error instanceof SidecarError)) throw error;
      io.stderr(`neo4j-pool-sidecar: top: ${error.message}\n`);
      return EXIT_FAILURE;
    } finally {
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
    }
  },
  { takesArguments: true },
);
