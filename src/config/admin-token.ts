/**
 * The bearer token that guards the sidecar's operator and admin HTTP endpoints, read from
 * http.adminTokenFile. Read by the server (checking requests) and by the CLI commands that call a
 * running sidecar, so both sides take it from the same configuration. The token itself never enters
 * the configuration object, logs or /status: only the file's path does.
 */
import { readFileSync, statSync } from 'node:fs';

/** Shorter tokens are refused: a guessable token guards nothing. */
export const MIN_ADMIN_TOKEN_LENGTH = 16;

export class AdminTokenError extends Error {}

/** The token in `path`, without a trailing newline; throws AdminTokenError saying what is wrong. */
export function readAdminToken(path: string): string {
  let token: string;
  try {
    token = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new AdminTokenError(`cannot read the admin token file: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (token.length < MIN_ADMIN_TOKEN_LENGTH) {
    throw new AdminTokenError(`the admin token file holds fewer than ${MIN_ADMIN_TOKEN_LENGTH} characters`);
  }
  return token;
}

/**
 * The token as it is now: re-read when the file's modification time or size changes, so a rotated
 * Kubernetes Secret takes effect without a restart. A file that became unreadable keeps the last
 * good token rather than opening the endpoints.
 */
export class AdminTokenFile {
  readonly #path: string;
  #token: string;
  #stamp: string;

  constructor(path: string) {
    this.#path = path;
    this.#token = readAdminToken(path);
    this.#stamp = this.#currentStamp();
  }

  get token(): string {
    const stamp = this.#currentStamp();
    if (stamp !== this.#stamp) {
      try {
        this.#token = readAdminToken(this.#path);
        this.#stamp = stamp;
      } catch {
        // Mid-rotation (the file briefly missing or empty): the previous token stays in force.
      }
    }
    return this.#token;
  }

  #currentStamp(): string {
    try {
      const stats = statSync(this.#path);
      return `${stats.mtimeMs}/${stats.size}/${stats.ino}`;
    } catch {
      return 'unreadable';
    }
  }
}
