/**
 * What neo4j-driver's own log lines become in the sidecar's log, shared by every driver the sidecar
 * builds. While Neo4j is unreachable the driver warns once per connection that breaks and once per
 * failed attempt (every readiness check, every probe), each with its full stack: that is one line
 * when Neo4j stops answering and one when it answers again, with the count of warnings left out
 * between. Any other driver warning is logged as it comes, without its stack.
 */
import type { Logger } from '../logger.ts';

export type Neo4jReachability = 'reachable' | 'unreachable';

/** Markers of a driver warning that says Neo4j could not be reached or dropped the connection. */
const UNREACHABLE_MARKERS =
  /ServiceUnavailable|SessionExpired|Failed to connect to server|Connection was closed by server|ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE|ETIMEDOUT/;

/** The driver's message up to its stack: it appends ". Stacktrace: ..." or the error's own "\n    at" lines. */
export function withoutStack(message: string): string {
  const stack = message.search(/\.? Stacktrace: |\n\s+at /);
  return (stack < 0 ? message : message.slice(0, stack)).trim();
}

/** Why the driver says Neo4j is unreachable, in a few words: its "Caused by" (the socket error) if any. */
function unreachableReason(message: string): string {
  const short = withoutStack(message);
  const cause = /Caused by: (.+?)(?:\.\s|\.?$)/.exec(short)?.[1];
  if (cause) return cause.trim();
  return /Connection was closed by server/.test(short) ? 'connection closed by server' : short.slice(0, 200);
}

export interface DriverLogOptions {
  /** Milliseconds; injectable for tests. */
  now?: () => number;
}

export class DriverLog {
  #state: Neo4jReachability = 'reachable';
  #since = 0;
  #suppressed = 0;
  readonly #logger: Logger;
  readonly #now: () => number;

  constructor(logger: Logger, options: DriverLogOptions = {}) {
    this.#logger = logger.child({ component: 'driver' });
    this.#now = options.now ?? Date.now;
  }

  get state(): Neo4jReachability {
    return this.#state;
  }

  /** The `logging.logger` of a driver's config (its level set to `warn`). */
  readonly log = (_level: string, message: string): void => {
    if (!UNREACHABLE_MARKERS.test(message)) {
      this.#logger.warn(withoutStack(message));
      return;
    }
    if (this.#state === 'unreachable') {
      this.#suppressed++;
      return;
    }
    this.#state = 'unreachable';
    this.#since = this.#now();
    this.#suppressed = 0;
    this.#logger.warn(
      { reason: unreachableReason(message) },
      'Neo4j unreachable; driver warnings about it are left out until it answers again',
    );
  };

  /** Neo4j answered (a readiness check, a probe): ends an outage the driver's warnings began. */
  answered(): void {
    if (this.#state === 'reachable') return;
    this.#state = 'reachable';
    this.#logger.info(
      { unreachableSeconds: Math.round((this.#now() - this.#since) / 100) / 10, suppressed: this.#suppressed },
      'Neo4j reachable again',
    );
  }
}
