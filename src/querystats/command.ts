/**
 * `neo4j-pool-sidecar queries [--url URL] [--sort total|mean|calls|errors] [--limit N]`: reads
 * GET /queries from a running sidecar and prints it as a table, the way psql shows
 * pg_stat_statements. It talks HTTP only, so it works against a sidecar in another container.
 */

import { type SidecarConfig, sidecarRequestHeaders, sidecarUrl } from '../config/index.ts';
import { type CliIo, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type ExtraCommand } from '../contracts.ts';
import { QUERY_SORTS, type QuerySort, type QueryStatsRow, type QueryStatsSnapshot } from './statistics.ts';

const MAX_QUERY_COLUMN = 100;
const REQUEST_TIMEOUT_MS = 10_000;

interface QueriesArgs {
  url: string;
  sort: QuerySort;
  limit: number;
}

export function parseQueriesArgs(args: readonly string[], config: SidecarConfig): QueriesArgs | string {
  const parsed: QueriesArgs = { url: sidecarUrl(config), sort: 'total', limit: 20 };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [name, inline] = arg.startsWith('--') && arg.includes('=') ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    const value = () => inline ?? args[++i];
    switch (name) {
      case '--url': {
        const url = value();
        if (!url || !/^https?:\/\/[^\s]+$/.test(url)) return '--url needs an http:// or https:// URL';
        parsed.url = url.replace(/\/+$/, '');
        break;
      }
      case '--sort': {
        const sort = value();
        if (!QUERY_SORTS.includes(sort as QuerySort)) return `--sort must be one of ${QUERY_SORTS.join(', ')}`;
        parsed.sort = sort as QuerySort;
        break;
      }
      case '--limit': {
        const limit = Number(value());
        if (!Number.isInteger(limit) || limit < 1 || limit > 1000) return '--limit must be an integer from 1 to 1000';
        parsed.limit = limit;
        break;
      }
      default:
        return `unknown option ${arg} for queries`;
    }
  }
  return parsed;
}

function milliseconds(seconds: number): string {
  return (seconds * 1000).toFixed(2);
}

function cut(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

/** psql's aligned format: header, dashes joined by +, right-aligned numbers, "(N rows)". */
export function formatQueriesTable(snapshot: QueryStatsSnapshot): string {
  const columns: Array<{ title: string; numeric: boolean; value: (row: QueryStatsRow) => string }> = [
    { title: 'id', numeric: false, value: (row) => row.id },
    { title: 'database', numeric: false, value: (row) => row.database },
    { title: 'calls', numeric: true, value: (row) => String(row.calls) },
    { title: 'total_ms', numeric: true, value: (row) => milliseconds(row.totalSeconds) },
    { title: 'mean_ms', numeric: true, value: (row) => milliseconds(row.meanSeconds) },
    { title: 'p95_ms', numeric: true, value: (row) => milliseconds(row.p95Seconds) },
    { title: 'max_ms', numeric: true, value: (row) => milliseconds(row.maxSeconds) },
    { title: 'errors', numeric: true, value: (row) => String(row.errors) },
    { title: 'rows', numeric: true, value: (row) => String(row.records) },
    { title: 'mode', numeric: false, value: (row) => row.mode },
    { title: 'query', numeric: false, value: (row) => cut(row.query, MAX_QUERY_COLUMN) },
  ];
  const cells = snapshot.queries.map((row) => columns.map((column) => column.value(row)));
  const widths = columns.map((column, i) => Math.max(column.title.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: readonly string[], header: boolean) =>
    values
      .map((value, i) => {
        const width = widths[i]!;
        if (header) {
          const left = Math.floor((width - value.length) / 2);
          return ` ${' '.repeat(left)}${value}${' '.repeat(width - value.length - left)} `;
        }
        return columns[i]!.numeric ? ` ${value.padStart(width)} ` : ` ${value.padEnd(width)} `;
      })
      .join('|')
      .trimEnd();
  const lines = [
    `Query statistics since ${snapshot.since}: ${snapshot.totalCalls} calls, ${milliseconds(snapshot.totalSeconds)} ms in total, ${snapshot.entries} of at most ${snapshot.maxFingerprints} fingerprints held`,
    '',
    line(
      columns.map((column) => column.title),
      true,
    ),
    widths.map((width) => '-'.repeat(width + 2)).join('+'),
    ...cells.map((row) => line(row, false)),
    `(${cells.length} ${cells.length === 1 ? 'row' : 'rows'})`,
  ];
  return `${lines.join('\n')}\n`;
}

async function fetchQueries(args: QueriesArgs, headers: Record<string, string>): Promise<QueryStatsSnapshot> {
  const url = `${args.url}/queries?sort=${args.sort}&limit=${args.limit}`;
  const response = await fetch(url, { headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const body = (await response.json().catch(() => null)) as (QueryStatsSnapshot & { message?: string }) | null;
  if (!response.ok || body === null) {
    throw new Error(`${url} answered ${response.status}${body?.message ? `: ${body.message}` : ''}`);
  }
  return body;
}

export const queriesCommand: ExtraCommand = Object.assign(
  async (config: SidecarConfig, io: CliIo, args: readonly string[]): Promise<number> => {
    const parsed = parseQueriesArgs(args, config);
    if (typeof parsed === 'string') {
      io.stderr(`neo4j-pool-sidecar: ${parsed}\n`);
      return EXIT_USAGE;
    }
    try {
      io.stdout(formatQueriesTable(await fetchQueries(parsed, sidecarRequestHeaders(config))));
      return EXIT_OK;
    } catch (error) {
      const cause = (error as { cause?: { message?: string } }).cause?.message;
      io.stderr(
        `neo4j-pool-sidecar: could not read query statistics from ${parsed.url}: ${(error as Error).message}${cause ? ` (${cause})` : ''}\n`,
      );
      return EXIT_FAILURE;
    }
  },
  { takesArguments: true },
);
