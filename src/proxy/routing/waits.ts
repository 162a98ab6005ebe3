/**
 * How a routed checkout waits or gives up: FailFast leaves an unreachable member for another at once
 * (its pool would hold the client through the outage), WriterHold holds a write while no writer is
 * known, within proxy.pooling.holdTimeoutMs, reported like the pool's own holds.
 */
import {
  type CheckoutOptions,
  HoldCancelledError,
  type HoldOutcome,
  type HoldReason,
  HoldTimeoutError,
  type PoolClock,
  RETRY_FIRST_DELAY_MS,
  RETRY_MAX_DELAY_MS,
  type UpstreamPool,
} from '../pool/pool.ts';
import { UpstreamClosedError } from '../pool/pooled-upstream.ts';

/** What a writer hold needs of the router: its clock, the bound, and where holds are reported. */
export interface WriterHoldSettings {
  readonly clock: PoolClock;
  readonly holdTimeoutMs: number;
  readonly observer: { holdEnded(reason: HoldReason, outcome: HoldOutcome, seconds: number): void };
}

/**
 * Checkout options for a member pool that gives up at once where the pool would hold through an outage
 * (another member can serve), while still holding through a pause like every pool.
 */
export class FailFast {
  readonly options: CheckoutOptions;
  #cancelled = false;

  constructor(pool: UpstreamPool, options: CheckoutOptions) {
    this.options = {
      ...options,
      onHold: (cancel) => {
        if (cancel !== null && !pool.maintenance.paused) {
          this.#cancelled = true;
          cancel();
          return;
        }
        options.onHold?.(cancel);
      },
    };
  }

  /** The checkout failed because this gave up on an unreachable member. */
  gaveUp(error: unknown): boolean {
    return this.#cancelled && error instanceof HoldCancelledError;
  }
}

/**
 * One unit's wait for a writer: backs off 100 ms doubling to 2 s between table refreshes (the caller
 * refreshes), ends released, timed_out (proxy.pooling.holdTimeoutMs from its start), client_left or
 * shutdown, and tells the client's front it is held, as the pool's holds do.
 */
export class WriterHold {
  readonly #router: WriterHoldSettings;
  readonly #options: CheckoutOptions;
  readonly #onEnd: () => void;
  readonly #startedMs: number;
  #delayMs = RETRY_FIRST_DELAY_MS;
  #ended = false;
  /** Rejects the wait under way, when the client leaves or the proxy stops. */
  #interrupt: ((error: Error) => void) | null = null;

  constructor(router: WriterHoldSettings, options: CheckoutOptions, onEnd: () => void) {
    this.#router = router;
    this.#options = options;
    this.#onEnd = onEnd;
    this.#startedMs = router.clock.now();
    options.onHold?.(() => this.end('client_left'));
  }

  wait(): Promise<void> {
    const { clock, holdTimeoutMs } = this.#router;
    const left = this.#startedMs + holdTimeoutMs - clock.now();
    if (this.#ended || left <= 0 || holdTimeoutMs === 0) {
      this.end('timed_out');
      return Promise.reject(
        new HoldTimeoutError(
          'no_writer',
          `no writer in the cluster's routing table; held for proxy.pooling.holdTimeoutMs (${holdTimeoutMs} ms), try again`,
        ),
      );
    }
    const delayMs = Math.min(this.#delayMs, left);
    this.#delayMs = Math.min(this.#delayMs * 2, RETRY_MAX_DELAY_MS);
    return new Promise((resolve, reject) => {
      const cancelTimer = clock.after(delayMs, () => {
        this.#interrupt = null;
        resolve();
      });
      this.#interrupt = (error) => {
        cancelTimer();
        reject(error);
      };
    });
  }

  end(outcome: HoldOutcome): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#onEnd();
    this.#options.onHold?.(null);
    this.#router.observer.holdEnded('no_writer', outcome, (this.#router.clock.now() - this.#startedMs) / 1000);
    const interrupt = this.#interrupt;
    this.#interrupt = null;
    if (outcome === 'client_left') interrupt?.(new HoldCancelledError('the client left while held'));
    else if (outcome === 'shutdown') interrupt?.(new UpstreamClosedError('the proxy is shutting down'));
  }
}
