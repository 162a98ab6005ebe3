/**
 * Pino logging shared by every part of the sidecar: JSON for machines, pretty for a person at a
 * terminal, and credentials redacted wherever they might end up in a log object.
 */
import { type Logger, pino } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  level: string;
  pretty: 'auto' | 'always' | 'never';
  /** Where JSON lines go; stdout by default (tests pass a stream to read them back). */
  destination?: NodeJS.WritableStream;
}

/** Paths a credential could appear under in anything we log. */
export const REDACTED_PATHS = [
  'password',
  'credentials',
  'authorization',
  '*.password',
  '*.credentials',
  '*.authorization',
  'config.neo4j.password',
  'req.headers.authorization',
  'req.headers.cookie',
];

export function createLogger(options: LoggerOptions): Logger {
  const pretty = options.pretty === 'always' || (options.pretty === 'auto' && process.stdout.isTTY === true);
  const base = {
    level: options.level,
    base: { name: 'neo4j-pool-sidecar' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  };
  if (options.destination) return pino(base, options.destination as pino.DestinationStream);
  if (pretty) return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true } } });
  return pino(base);
}

/**
 * Logs at most one line per interval for a repeating failure (StatsD down, a flood of bad
 * clients), saying how many were suppressed in between, so a fault cannot flood the logs.
 */
export function rateLimited(
  log: (fields: Record<string, unknown>, message: string) => void,
  intervalMs: number,
): (fields: Record<string, unknown>, message: string) => void {
  let lastAt = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  return (fields, message) => {
    const now = Date.now();
    if (now - lastAt < intervalMs) {
      suppressed++;
      return;
    }
    lastAt = now;
    log({ ...fields, ...(suppressed > 0 ? { suppressed } : {}) }, message);
    suppressed = 0;
  };
}
