/**
 * The link of a client connection to an upstream the pool lent it: one per connection, lent one
 * upstream at a time (for the client's life in session mode, per unit of work in transaction mode).
 * Bytes go through PooledUpstream, which keeps its socket; release hands the upstream back to the pool.
 */
import { type BoltDechunker, BoltSignature, requestMessage } from '../bolt/index.ts';
import type { CloseReason } from '../metrics.ts';
import type { LinkRelease, UpstreamEvents, UpstreamLink } from '../upstream-link.ts';
import type { UpstreamCloseReason, UpstreamPool } from './pool.ts';
import type { PooledUpstream, UpstreamBorrower } from './pooled-upstream.ts';

/**
 * A client that left one of these ways left its upstream in a state RESET can clean (an idle
 * transaction's is rolled back by that RESET).
 */
const CLEAN_CLOSES: ReadonlySet<CloseReason> = new Set([
  'client_closed',
  'client_error',
  'shutdown',
  'idle_transaction_timeout',
]);

/** GOODBYE as drivers send it, in one chunk. */
const GOODBYE_MESSAGE = requestMessage(BoltSignature.GOODBYE);

/**
 * Whether a client read may carry (part of) a GOODBYE, which must not reach a lent upstream: it holds
 * one, or continues a message that may be one. Any other read can go upstream before it is parsed.
 */
export function mayCarryGoodbye(data: Buffer, messages: BoltDechunker): boolean {
  if (messages.pendingMessageStart !== null) {
    const signature = messages.pendingMessageSignature;
    if (signature === null || signature === BoltSignature.GOODBYE) return true;
  }
  return data.includes(GOODBYE_MESSAGE);
}

export class LentUpstreamLink implements UpstreamLink {
  readonly outlivesClient = true;
  /** Where the lent upstream goes back: the proxy's pool, or with cluster routing the pool of its member. */
  #lentFrom: UpstreamPool | null = null;
  readonly #borrower: UpstreamBorrower;
  /** The client sent LOGON or LOGOFF itself: the upstream's login is no longer one the pool knows. */
  readonly #loginChanged: () => boolean;
  #upstream: PooledUpstream | null = null;

  constructor(events: UpstreamEvents, loginChanged: () => boolean) {
    this.#loginChanged = loginChanged;
    this.#borrower = {
      onData: events.onData,
      onClosed: (error) => {
        this.#upstream = null;
        events.onClosed(error);
      },
    };
  }

  /** From now on `upstream`'s bytes and close come to this link's connection; it goes back to `pool`. */
  lend(upstream: PooledUpstream, pool: UpstreamPool): this {
    if (this.#upstream !== null) throw new Error(`an upstream is lent already; upstream ${upstream.id} cannot be`);
    upstream.lend(this.#borrower);
    this.#upstream = upstream;
    this.#lentFrom = pool;
    return this;
  }

  get bufferedBytes(): number {
    return this.#upstream?.bufferedBytes ?? 0;
  }

  write(data: Buffer): boolean {
    const upstream = this.#upstream;
    if (upstream === null || upstream.state === 'gone') return true;
    return upstream.write(data);
  }

  onceDrained(listener: () => void): void {
    this.#upstream?.onceDrained(listener);
  }

  pause(): void {
    this.#upstream?.pause();
  }

  resume(): void {
    this.#upstream?.resume();
  }

  release(release: LinkRelease): boolean {
    const upstream = this.#upstream;
    const pool = this.#lentFrom;
    if (upstream === null || pool === null) return true;
    this.#upstream = null;
    // The pool reads the rest itself (RESET's replies): a pause for this client's back-pressure must not outlive it.
    upstream.resume();
    const reason = this.#unreusableBecause(release);
    pool.release(
      upstream,
      reason === null ? { pendingSummaries: release.pendingSummaries, ready: release.ready } : { destroy: reason },
    );
    return true;
  }

  #unreusableBecause(release: LinkRelease): UpstreamCloseReason | null {
    // The pool could not find where the next message starts.
    if (release.midMessage) return 'client_left_mid_message';
    if (this.#loginChanged()) return 'client_changed_login';
    const closeReason = release.closeReason;
    return closeReason === null || CLEAN_CLOSES.has(closeReason) ? null : 'abandoned';
  }

  /** A lent upstream is returned (or closed) by release when the client's socket closes. */
  destroy(): void {}
}
