/**
 * The one gate every Neo4j login of the sidecar goes through, so that a sidecar with a stale password
 * cannot lock its user out for everyone.
 *
 * Neo4j locks a user for `dbms.security.auth_lock_time` (5 s) after `dbms.security.auth_max_failed_attempts`
 * (3) failed logins, and the lock refuses the right password too: a sidecar retrying a rotated-away
 * password every few seconds keeps the workers sharing its user out. So once Neo4j refuses the
 * credentials (Unauthorized, or AuthenticationRateLimit when someone else caused the lock), nothing of
 * the sidecar logs in with them again until a retry is due: the first after `retryInitialMs` (more than
 * one lock window), each further one twice as late up to `retryMaxMs`, each retry a single login. A
 * changed password file (Kubernetes updates a mounted Secret in place) is tried at once.
 *
 * Two layers, because the driver decides by itself when to log in (a new pooled connection, a
 * re-authentication): every operation asks `run` first, which refuses without touching Neo4j while the
 * credentials are refused and lets exactly one verification login through before anything else after a
 * start, a change of password or a due retry; and every driver the sidecar builds takes its credentials
 * from `authTokenManager`, which reports the refusals the driver meets and hands out no token while
 * refused. The token manager keeps the drivers themselves (and the instrumentation hooked into their
 * pools) for the sidecar's lifetime: a new password reaches pooled connections by re-authentication
 * (Bolt 5.1+), where rebuilding the driver would have to replace it under every component holding it.
 */
import { readFile } from 'node:fs/promises';
import neo4j, { type AuthToken, type AuthTokenManager } from 'neo4j-driver';
import type { Logger } from '../logger.ts';

export type CredentialsState = 'unverified' | 'accepted' | 'rejected';

/** The Neo4j codes that mean "these credentials were refused", and their metric label. */
export const REJECTION_REASONS: Readonly<Record<string, RejectionReason>> = {
  'Neo.ClientError.Security.Unauthorized': 'unauthorized',
  'Neo.ClientError.Security.AuthenticationRateLimit': 'rate_limited',
};
export type RejectionReason = 'unauthorized' | 'rate_limited';

/** Thrown instead of contacting Neo4j while its refusal of the credentials stands. */
export class CredentialsRejectedError extends Error {
  readonly code = 'Neo4jPoolSidecar.CredentialsRejected';
  constructor(message: string) {
    super(message);
    this.name = 'CredentialsRejectedError';
  }
}

export function isCredentialsRejected(error: unknown): error is CredentialsRejectedError {
  return (error as { code?: unknown } | null)?.code === 'Neo4jPoolSidecar.CredentialsRejected';
}

function rejectionReason(error: unknown): RejectionReason | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? REJECTION_REASONS[code] : undefined;
}

/** What the gate reports as it changes state (metrics are the sidecar's business, not the gate's). */
export interface CredentialsObserver {
  /** Neo4j refused the credentials: a first refusal or a failed retry. */
  rejected?(reason: RejectionReason): void;
  /** Any change of state. */
  changed?(state: CredentialsState): void;
}

export interface CredentialsGateOptions {
  username: string;
  password: string | undefined;
  /** Re-read every `pollIntervalMs`; a new password is verified at once. */
  passwordFile?: string | undefined;
  /** One login with these credentials, on a connection of its own; rejects as the driver does. */
  verify: (auth: AuthToken) => Promise<void>;
  /** Bound on a verification login (a frozen server must not hold the gate forever). */
  verifyTimeoutMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  pollIntervalMs?: number;
  logger?: Logger;
  observer?: CredentialsObserver;
  readPasswordFile?: (path: string) => Promise<string>;
}

export interface CredentialsStatus {
  state: CredentialsState;
  user: string;
  since: string;
  /** While rejected: the Neo4j code of the refusal and when the next single login is due. */
  rejectedWith?: string;
  nextAttemptAt?: string;
  rejections: number;
}

const DEFAULT_POLL_MS = 1000;

export class CredentialsGate {
  private password: string;
  private stateValue: CredentialsState = 'unverified';
  private since = Date.now();
  private verification: Promise<void> | undefined;
  /** Error of the last verification that neither accepted nor refused (Neo4j unreachable). */
  private lastVerifyError: unknown;
  private retryDelayMs: number;
  private retryAt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private polling = false;
  private fileError: string | undefined;
  private rejectedWith: string | undefined;
  private rejectionCount = 0;
  private refusedSinceAccepted = false;
  private readonly logger: Logger | undefined;
  private readonly listeners: Array<(state: CredentialsState) => void> = [];

  /** For every driver the sidecar builds: credentials from the gate, refusals reported to it. */
  readonly authTokenManager: AuthTokenManager;

  constructor(private readonly options: CredentialsGateOptions) {
    this.password = options.password ?? '';
    this.retryDelayMs = options.retryInitialMs;
    this.logger = options.logger?.child({ component: 'credentials' });
    this.authTokenManager = {
      getToken: async () => {
        // Only operations admitted by `run` reach a driver; this refuses anything else while refused.
        if (this.stateValue === 'rejected') throw this.refusal();
        return this.token();
      },
      handleSecurityException: (auth, code) => {
        const reason = REJECTION_REASONS[code];
        if (reason && auth.credentials === this.password) this.reject(reason, code);
        return false;
      },
    };
  }

  get state(): CredentialsState {
    return this.stateValue;
  }

  /** Called on every change of state (e.g. to re-check readiness at once when Neo4j accepts again). */
  onChange(listener: (state: CredentialsState) => void): void {
    this.listeners.push(listener);
  }

  /** Verifies the credentials and starts watching the password file. */
  start(): void {
    void this.verifyOnce();
    if (!this.options.passwordFile || this.polling) return;
    this.polling = true;
    this.schedulePoll();
  }

  stop(): void {
    this.polling = false;
    clearTimeout(this.pollTimer);
    clearTimeout(this.retryTimer);
  }

  /**
   * Runs `work`, which may contact Neo4j, once the credentials may be used: at once when Neo4j accepted
   * them; after the one verification login when they are unverified; never (CredentialsRejectedError)
   * while Neo4j's refusal stands. A refusal `work` meets is reported to the gate.
   */
  async run<T>(work: () => Promise<T>): Promise<T> {
    await this.admit();
    try {
      return await work();
    } catch (error) {
      const reason = rejectionReason(error);
      if (reason) this.reject(reason, (error as { code: string }).code);
      throw error;
    }
  }

  /** For /readyz: ok only once Neo4j has accepted the credentials. */
  readiness(): { ok: boolean; detail?: string } {
    if (this.stateValue === 'accepted') return { ok: true };
    if (this.stateValue === 'unverified') return { ok: false, detail: 'credentials not verified with Neo4j yet' };
    return { ok: false, detail: this.refusal().message };
  }

  status(): CredentialsStatus {
    return {
      state: this.stateValue,
      user: this.options.username,
      since: new Date(this.since).toISOString(),
      ...(this.stateValue === 'rejected'
        ? { rejectedWith: this.rejectedWith ?? '', nextAttemptAt: new Date(this.retryAt).toISOString() }
        : {}),
      rejections: this.rejectionCount,
    };
  }

  private token(): AuthToken {
    return neo4j.auth.basic(this.options.username, this.password);
  }

  private refusal(): CredentialsRejectedError {
    const file = this.options.passwordFile ? ', or at once when the password file changes' : '';
    return new CredentialsRejectedError(
      `Neo4j refused the credentials of user ${this.options.username} (${this.rejectedWith}); not logging in with them again until ${new Date(this.retryAt).toISOString()}${file}`,
    );
  }

  private async admit(): Promise<void> {
    for (;;) {
      if (this.stateValue === 'accepted') return;
      if (this.stateValue === 'rejected') throw this.refusal();
      // Unverified: one verification login, which every caller meanwhile waits for.
      await this.verifyOnce();
      if (this.stateValue === 'unverified') throw this.lastVerifyError ?? new Error('credentials not verified');
    }
  }

  private verifyOnce(): Promise<void> {
    this.verification ??= this.verify().finally(() => {
      this.verification = undefined;
    });
    return this.verification;
  }

  private async verify(): Promise<void> {
    const password = this.password;
    const auth = this.token();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.options.verify(auth),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(
            () => reject(new Error(`Neo4j did not answer a login within ${this.options.verifyTimeoutMs} ms`)),
            this.options.verifyTimeoutMs,
          );
        }),
      ]);
      if (password === this.password) this.accept();
    } catch (error) {
      if (password !== this.password) return; // a newer password is being verified instead
      const reason = rejectionReason(error);
      if (reason) {
        this.reject(reason, (error as { code: string }).code);
      } else {
        // Neither accepted nor refused (Neo4j unreachable): the state stands, callers see why.
        this.lastVerifyError = error;
        if (this.stateValue === 'rejected') this.scheduleRetry(this.retryDelayMs);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  private accept(): void {
    if (this.stateValue === 'accepted') return;
    const wasRefused = this.refusedSinceAccepted;
    this.refusedSinceAccepted = false;
    this.retryDelayMs = this.options.retryInitialMs;
    this.rejectedWith = undefined;
    this.lastVerifyError = undefined;
    this.setState('accepted');
    this.logger?.info(
      { user: this.options.username },
      wasRefused ? 'Neo4j accepts the credentials again' : 'Neo4j accepted the credentials',
    );
  }

  private reject(reason: RejectionReason, code: string): void {
    const retrying = this.stateValue === 'rejected';
    // Refusals of logins already under way when the first one came in are the same event.
    if (retrying && this.verification === undefined) return;
    this.rejectionCount++;
    this.refusedSinceAccepted = true;
    this.options.observer?.rejected?.(reason);
    this.rejectedWith = code;
    if (retrying) this.retryDelayMs = Math.min(this.retryDelayMs * 2, this.options.retryMaxMs);
    else this.retryDelayMs = this.options.retryInitialMs;
    this.scheduleRetry(this.retryDelayMs);
    if (!retrying) {
      this.setState('rejected');
      this.logger?.warn(
        {
          user: this.options.username,
          code,
          retryInSeconds: this.retryDelayMs / 1000,
          passwordFile: this.options.passwordFile,
        },
        `Neo4j refused the sidecar's credentials: no more logins with them until a retry is due${this.options.passwordFile ? ' or the password file changes' : ''}`,
      );
    }
  }

  private scheduleRetry(delayMs: number): void {
    clearTimeout(this.retryTimer);
    this.retryAt = Date.now() + delayMs;
    this.retryTimer = setTimeout(() => void this.verifyOnce(), delayMs);
    this.retryTimer.unref();
  }

  private setState(state: CredentialsState): void {
    this.stateValue = state;
    this.since = Date.now();
    this.options.observer?.changed?.(state);
    for (const listener of this.listeners) listener(state);
  }

  private schedulePoll(): void {
    if (!this.polling) return;
    this.pollTimer = setTimeout(() => void this.poll().finally(() => this.schedulePoll()), this.pollIntervalMs);
    this.pollTimer.unref();
  }

  private get pollIntervalMs(): number {
    return this.options.pollIntervalMs ?? DEFAULT_POLL_MS;
  }

  /** Reads the password file; a new password is verified at once, whatever the state. */
  private async poll(): Promise<void> {
    const path = this.options.passwordFile;
    if (!path) return;
    let text: string;
    try {
      text = await (this.options.readPasswordFile ?? ((file) => readFile(file, 'utf8')))(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      // Kubernetes swaps the Secret's files by renaming a symlink: a failed read is usually momentary.
      if (this.fileError !== code) this.logger?.warn({ passwordFile: path, code }, 'cannot read the password file');
      this.fileError = code;
      return;
    }
    this.fileError = undefined;
    const password = text.replace(/\r?\n$/, '');
    // An empty read is a file caught mid-write (`echo new > file` truncates first): wait for the next.
    if (password === this.password || password === '') return;
    this.password = password;
    clearTimeout(this.retryTimer);
    this.retryDelayMs = this.options.retryInitialMs;
    this.setState('unverified');
    this.logger?.info({ passwordFile: path }, 'the password file changed: verifying the new password with one login');
    await this.verifyOnce();
  }
}
