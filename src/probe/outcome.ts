/**
 * How a probe run ended, in the four reasons operators act on differently: a timeout (slow server or
 * saturated pool), auth (wrong or expired credentials), unavailable (server or network down), other.
 */

import { isCredentialsRejected } from '../driver/credentials.ts';

export const FAILURE_REASONS = ['timeout', 'auth', 'unavailable', 'other'] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/** Raised by the probe runner itself when a probe exceeds probes.timeoutMs. */
export class ProbeTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`probe timed out after ${timeoutMs} ms`);
    this.name = 'ProbeTimeoutError';
  }
}

const ACQUISITION_TIMEOUT_MESSAGE = 'Connection acquisition timed out';
const UNAVAILABLE_CODES = new Set([
  'ServiceUnavailable',
  'SessionExpired',
  'Neo.TransientError.General.DatabaseUnavailable',
  'Neo.ClientError.Cluster.NotALeader',
]);
const NETWORK_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);

function field(error: unknown, name: string): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const value = (error as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : undefined;
}

export function classifyFailure(error: unknown): FailureReason {
  if (error instanceof ProbeTimeoutError) return 'timeout';
  if (isCredentialsRejected(error)) return 'auth';
  const message = error instanceof Error ? error.message : String(error);
  if (message.startsWith(ACQUISITION_TIMEOUT_MESSAGE)) return 'timeout';
  const code = field(error, 'code') ?? '';
  if (code.startsWith('Neo.ClientError.Security.')) return 'auth';
  if (UNAVAILABLE_CODES.has(code)) return 'unavailable';
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  const networkCode = field(error, 'errno') ?? field(cause, 'code') ?? code;
  if (NETWORK_ERROR_CODES.has(networkCode)) return 'unavailable';
  if (/ECONNREFUSED|ECONNRESET|EHOSTUNREACH|socket hang up|Failed to connect/i.test(message)) return 'unavailable';
  if (/connection timed out|ETIMEDOUT/i.test(message)) return 'timeout';
  return 'other';
}

/** A short, credential-free description of a failure for /status and logs. */
export function describeFailure(error: unknown): string {
  const code = field(error, 'code');
  const message = (error instanceof Error ? error.message : String(error)).split('\n', 1)[0]!.slice(0, 300);
  return code && code !== 'N/A' && !message.includes(code) ? `${code}: ${message}` : message;
}

/**
 * Resolves or rejects like `work`, but rejects with ProbeTimeoutError after `timeoutMs`. `work` itself
 * must free what it opened however late it finishes: the scheduler no longer waits for it.
 */
export function withTimeout<T>(work: Promise<T>, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      reject(new ProbeTimeoutError(timeoutMs));
    }, timeoutMs);
    work.then(
      (value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
