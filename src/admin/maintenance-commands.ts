/**
 * `neo4j-pool-sidecar pause | resume | reconnect`: pgbouncer's PAUSE, RESUME and RECONNECT for the
 * running sidecar, through POST /proxy/pause, /proxy/resume and /proxy/reconnect. Exit codes: 0 done;
 * 1 the sidecar is unreachable or refused (the reason on stderr); 2 bad usage; 3 paused but the drain
 * timed out (what still runs on stderr; the pause stays on).
 */
import type { SidecarConfig } from '../config/index.ts';
import { type CliIo, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type ExtraCommand } from '../contracts.ts';
import {
  DEFAULT_DRAIN_TIMEOUT_SECONDS,
  MAX_DRAIN_TIMEOUT_SECONDS,
  type PauseReport,
  type ReconnectReport,
  type ResumeReport,
  type RunningWork,
} from '../proxy/index.ts';
import { parseUrlOption, SidecarError, sidecarClient } from './sidecar-client.ts';

/** Paused, but work was still in flight when the drain timeout ran out. */
export const EXIT_NOT_DRAINED = 3;

interface VerbArgs {
  url?: string;
  json: boolean;
  drainTimeoutSeconds: number;
}

export function parseVerbArgs(verb: string, args: readonly string[]): VerbArgs | string {
  const parsed: VerbArgs = { json: false, drainTimeoutSeconds: DEFAULT_DRAIN_TIMEOUT_SECONDS };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [name, inline] = arg.startsWith('--') && arg.includes('=') ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    const value = () => inline ?? args[++i];
    if (name === '--json') parsed.json = true;
    else if (name === '--url') {
      const url = parseUrlOption(value());
      if (typeof url === 'string') return url;
      parsed.url = url.url;
    } else if (name === '--drain-timeout' && verb === 'pause') {
      const seconds = Number(value());
      if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_DRAIN_TIMEOUT_SECONDS) {
        return `--drain-timeout must be a whole number of seconds from 0 to ${MAX_DRAIN_TIMEOUT_SECONDS}`;
      }
      parsed.drainTimeoutSeconds = seconds;
    } else return `unknown option ${arg} for ${verb}`;
  }
  return parsed;
}

/** "2 in_unit, 1 held; 1 unit and 3 queries in flight, 2 upstreams lent": only the non-zero parts. */
export function describeRunning(running: RunningWork): string {
  const clients = Object.entries(running.clients)
    .filter(([, count]) => count > 0)
    .map(([state, count]) => `${count} ${state}`);
  const plural = (count: number, one: string, many: string) => `${count} ${count === 1 ? one : many}`;
  const work = [
    running.unitsInFlight > 0 ? plural(running.unitsInFlight, 'unit', 'units') : '',
    running.queriesInFlight > 0 ? plural(running.queriesInFlight, 'query', 'queries') : '',
    running.upstreamsLent > 0 ? plural(running.upstreamsLent, 'upstream lent', 'upstreams lent') : '',
  ].filter((part) => part !== '');
  return `clients: ${clients.length > 0 ? clients.join(', ') : 'none'}; in flight: ${work.length > 0 ? work.join(', ') : 'nothing'}`;
}

export function describePause(report: PauseReport): string {
  if (report.drained) {
    return `paused since ${report.pausedSince}: drained (waited ${report.waitedSeconds.toFixed(1)} s); new work is held until \`neo4j-pool-sidecar resume\` or the maximum pause of ${report.maxPauseSeconds} s\n`;
  }
  return `paused since ${report.pausedSince}, but NOT drained after ${report.waitedSeconds.toFixed(1)} s: ${describeRunning(report.running)}. The pause stays on (new work is held); wait and pause again, or \`neo4j-pool-sidecar resume\`.\n`;
}

export function describeResume(report: ResumeReport): string {
  return report.wasPaused
    ? `resumed after ${report.pausedSeconds.toFixed(1)} s paused; ${report.released} held client${report.released === 1 ? '' : 's'} released\n`
    : 'not paused: nothing to resume\n';
}

export function describeReconnect(report: ReconnectReport): string {
  return `reconnecting: ${report.upstreams} upstream${report.upstreams === 1 ? '' : 's'} closed now or at their next return; new ones open on demand\n`;
}

function verbCommand(verb: 'pause' | 'resume' | 'reconnect'): ExtraCommand {
  return Object.assign(
    async (config: SidecarConfig, io: CliIo, args: readonly string[]): Promise<number> => {
      const parsed = parseVerbArgs(verb, args);
      if (typeof parsed === 'string') {
        io.stderr(`neo4j-pool-sidecar: ${parsed}\n`);
        return EXIT_USAGE;
      }
      const client = sidecarClient(config, parsed.url);
      try {
        if (verb === 'pause') {
          const report = await client.post<PauseReport>(
            `/proxy/pause?drainTimeoutSeconds=${parsed.drainTimeoutSeconds}`,
            parsed.drainTimeoutSeconds * 1000,
          );
          const text = parsed.json ? `${JSON.stringify(report)}\n` : describePause(report);
          if (report.drained) io.stdout(text);
          else io.stderr(text);
          return report.drained ? EXIT_OK : EXIT_NOT_DRAINED;
        }
        const report = await client.post<ResumeReport | ReconnectReport>(`/proxy/${verb}`, 0);
        if (parsed.json) io.stdout(`${JSON.stringify(report)}\n`);
        else if (verb === 'resume') io.stdout(describeResume(report as ResumeReport));
        else io.stdout(describeReconnect(report as ReconnectReport));
        return EXIT_OK;
      } catch (error) {
        if (!(error instanceof SidecarError)) throw error;
        io.stderr(`neo4j-pool-sidecar: ${verb} failed: ${error.message}\n`);
        return EXIT_FAILURE;
      }
    },
    { takesArguments: true },
  );
}

export const pauseCommand = verbCommand('pause');
export const resumeCommand = verbCommand('resume');
export const reconnectCommand = verbCommand('reconnect');
