/**
 * How the admin commands talk to a running sidecar: its HTTP API at the address and with the token the
 * same configuration and environment give (src/config/sidecar-endpoint.ts), so `kubectl exec` into the
 * pod and the bare command is enough. An unreachable sidecar or a refused request is a SidecarError
 * whose message says which and why.
 */
import { type SidecarConfig, sidecarRequestHeaders, sidecarUrl } from '../config/index.ts';

export class SidecarError extends Error {}

/** The value of --url: a sidecar elsewhere than the configuration says; an error message when it is not a URL. */
export function parseUrlOption(url: string | undefined): { url: string } | string {
  if (!url || !/^https?:\/\/[^\s]+$/.test(url)) return '--url needs an http:// or https:// URL';
  return { url: url.replace(/\/+$/, '') };
}

export interface SidecarClient {
  readonly url: string;
  /** The body of a 2xx answer; null for a 404 (a part that is off), with its reason in `notFound`. */
  get<T>(path: string): Promise<{ body: T } | { notFound: string }>;
  post<T>(path: string, timeoutMs: number): Promise<T>;
}

/** Slack over a request's own deadline (a pause's drain timeout) for the answer to arrive. */
const ANSWER_SLACK_MS = 10_000;
const REQUEST_TIMEOUT_MS = 10_000;

export function sidecarClient(config: SidecarConfig, url: string = sidecarUrl(config)): SidecarClient {
  // Read once per command: a rotated token file is read again by the next command.
  const headers = sidecarRequestHeaders(config);
  const request = async (method: 'GET' | 'POST', path: string, timeoutMs: number) => {
    let response: Response;
    try {
      response = await fetch(`${url}${path}`, { method, headers, signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      const cause = (error as { cause?: { message?: string } }).cause?.message;
      throw new SidecarError(
        `the sidecar at ${url} did not answer ${method} ${path}: ${(error as Error).message}${cause ? ` (${cause})` : ''}`,
      );
    }
    const body = (await response.json().catch(() => null)) as { message?: string } | null;
    return { status: response.status, body };
  };
  const refused = (method: string, path: string, status: number, body: { message?: string } | null) =>
    new SidecarError(`${method} ${url}${path} answered ${status}${body?.message ? `: ${body.message}` : ''}`);
  return {
    url,
    async get<T>(path: string) {
      const { status, body } = await request('GET', path, REQUEST_TIMEOUT_MS);
      if (status === 404 && body?.message) return { notFound: body.message };
      if (status < 200 || status >= 300 || body === null) throw refused('GET', path, status, body);
      return { body: body as T };
    },
    async post<T>(path: string, timeoutMs: number) {
      const { status, body } = await request('POST', path, timeoutMs + ANSWER_SLACK_MS);
      if (status < 200 || status >= 300 || body === null) throw refused('POST', path, status, body);
      return body as T;
    },
  };
}
