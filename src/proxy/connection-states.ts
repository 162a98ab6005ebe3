/**
 * A client connection's two state machines, one transition function each, and the moment both are
 * done (the connection then finishes). The upstream one is the connection's link to Neo4j, not a pooled
 * upstream's own state (pool/pooled-upstream.ts): `connecting` and `ending` happen only to a socket
 * opened for this client, `checking-out` and `released` only to one the pool lends; `unlinked` is
 * before the first upstream and, in transaction mode, between units of work.
 *
 *   client:                handshaking → [logging-in →] linked → ending → closed  (refusing: answered with a FAILURE)
 *   upstream, own socket:  unlinked → connecting → linked → ending → disconnected
 *   upstream, lent:        unlinked → checking-out → linked → released | disconnected
 *                          (transaction mode: linked → unlinked → checking-out → linked ... per unit of work)
 */
import { ConnectionProblem } from './problems.ts';

export type ClientState = 'handshaking' | 'logging-in' | 'linked' | 'refusing' | 'ending' | 'closed';
export type UpstreamLinkState =
  | 'unlinked'
  | 'connecting'
  | 'checking-out'
  | 'linked'
  | 'ending'
  | 'released'
  | 'disconnected';

const CLIENT_TRANSITIONS: Readonly<Record<ClientState, readonly ClientState[]>> = {
  handshaking: ['logging-in', 'linked', 'refusing', 'ending', 'closed'],
  'logging-in': ['linked', 'refusing', 'ending', 'closed'],
  linked: ['refusing', 'ending', 'closed'],
  refusing: ['closed'],
  ending: ['closed'],
  closed: [],
};
const UPSTREAM_TRANSITIONS: Readonly<Record<UpstreamLinkState, readonly UpstreamLinkState[]>> = {
  unlinked: ['connecting', 'checking-out', 'linked'],
  connecting: ['linked', 'ending', 'disconnected'],
  // Also while an upstream opened with the client's HELLO is held for its LOGON.
  'checking-out': ['linked', 'unlinked', 'released', 'disconnected'],
  // Transaction mode: back to unlinked between units of work.
  linked: ['ending', 'released', 'unlinked', 'disconnected'],
  ending: ['disconnected'],
  released: [],
  disconnected: [],
};
/** No upstream, or it is gone or back in the pool: nothing more will come from it. */
const UPSTREAM_DONE: ReadonlySet<UpstreamLinkState> = new Set(['unlinked', 'released', 'disconnected']);

export class ConnectionStates {
  #client: ClientState = 'handshaking';
  #upstream: UpstreamLinkState = 'unlinked';
  #changedAtMs = performance.now();
  readonly #onBothDone: () => void;

  /** `onBothDone` runs on the transition that leaves the client closed and the upstream done. */
  constructor(onBothDone: () => void) {
    this.#onBothDone = onBothDone;
  }

  /** When either machine last moved (performance.now()): how long a client has been in its state. */
  get changedAtMs(): number {
    return this.#changedAtMs;
  }

  get client(): ClientState {
    return this.#client;
  }

  get upstream(): UpstreamLinkState {
    return this.#upstream;
  }

  setClient(next: ClientState): void {
    const current = this.#client;
    if (current === next) return;
    if (!CLIENT_TRANSITIONS[current].includes(next)) {
      throw new ConnectionProblem('internal_error', `client socket: no transition ${current} → ${next}`);
    }
    this.#client = next;
    this.#changedAtMs = performance.now();
    if (next === 'closed' && UPSTREAM_DONE.has(this.#upstream)) this.#onBothDone();
  }

  setUpstream(next: UpstreamLinkState): void {
    const current = this.#upstream;
    if (current === next) return;
    if (!UPSTREAM_TRANSITIONS[current].includes(next)) {
      throw new ConnectionProblem('internal_error', `upstream link: no transition ${current} → ${next}`);
    }
    this.#upstream = next;
    this.#changedAtMs = performance.now();
    if (this.#client === 'closed' && UPSTREAM_DONE.has(next)) this.#onBothDone();
  }
}
