/**
 * Whether Neo4j answers, kept up to date in the background so /readyz can answer from it at once.
 *
 * A readiness request must never wait on Neo4j: a frozen or overloaded server would hold the request
 * past the kubelet's timeout, and every request would add a round trip of its own. Instead one check
 * runs every `intervalMs`; a check still unanswered after `deadlineMs` makes the state "not answering"
 * while it waits, so a server that stops answering shows within interval + deadline. At most one check
 * is in flight: a server that does not answer is not sent a pile of them.
 */

export interface CheckState {
  ok: boolean;
  detail: string;
}

export interface Neo4jCheckOptions {
  /** One check against Neo4j; resolves with a description of what answered. */
  check: () => Promise<string>;
  intervalMs: number;
  deadlineMs: number;
  /** A check unanswered this long is given up, so a new one may start (a connection lost without a reset). */
  abandonAfterMs?: number;
  /** Short description of a failure (no credentials, first line only). */
  describe: (error: unknown) => string;
}

export class Neo4jCheck {
  private last: CheckState | undefined;
  private inFlight: { startedAt: number; id: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private checks = 0;
  private running = false;

  constructor(private readonly options: Neo4jCheckOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.tick();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Runs a check now unless one is in flight (a change worth re-checking at once, e.g. new credentials). */
  refreshNow(): void {
    if (this.running) this.tick();
  }

  /** The state as of now; never waits. */
  current(now = Date.now()): CheckState {
    const { deadlineMs } = this.options;
    if (this.inFlight && now - this.inFlight.startedAt > deadlineMs) {
      const seconds = ((now - this.inFlight.startedAt) / 1000).toFixed(1);
      return { ok: false, detail: `Neo4j did not answer for ${seconds} s (readiness check deadline ${deadlineMs} ms)` };
    }
    return this.last ?? { ok: false, detail: 'Neo4j not checked yet' };
  }

  private tick(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), this.options.intervalMs);
    this.timer.unref();
    const abandonAfterMs = this.options.abandonAfterMs ?? 30_000;
    if (this.inFlight && Date.now() - this.inFlight.startedAt < abandonAfterMs) return;
    const id = ++this.checks;
    this.inFlight = { startedAt: Date.now(), id };
    const settle = (state: CheckState) => {
      // A check given up on may still settle later; only the newest one speaks for the server.
      if (this.inFlight?.id !== id) return;
      this.inFlight = undefined;
      this.last = state;
    };
    this.options.check().then(
      (detail) => settle({ ok: true, detail }),
      (error: unknown) => settle({ ok: false, detail: `Neo4j not reachable: ${this.options.describe(error)}` }),
    );
  }
}
