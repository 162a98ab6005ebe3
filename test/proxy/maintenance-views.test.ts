/**
 * How a client connection's two state machines read as SHOW CLIENTS states, and how long it has been
 * in one, on an injected clock. The views over a real proxy and Neo4j are in maintenance.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClientState as SocketState, UpstreamLinkState } from '../../src/proxy/connection-states.ts';
import { ClientStates, clientState, keyHash, type ViewedConnection } from '../../src/proxy/maintenance-views.ts';

function connection(client: SocketState, upstream: UpstreamLinkState, quiet = true, changedAtMs = 0): ViewedConnection {
  return {
    id: 1,
    remoteAddress: '10.0.0.1:5000',
    userAgent: 'neo4j-python',
    openQueries: quiet ? 0 : 1,
    quiet,
    queryCount: 4,
    states: { client, upstream, changedAtMs } as ViewedConnection['states'],
  };
}

describe('client states', () => {
  it('read login, in a unit, idle, waiting, held and closing off the state machines', () => {
    const cases: Array<[SocketState, UpstreamLinkState, boolean, boolean, string]> = [
      ['handshaking', 'unlinked', true, false, 'login'],
      ['logging-in', 'connecting', true, false, 'login'],
      ['logging-in', 'checking-out', true, false, 'waiting'],
      ['logging-in', 'checking-out', true, true, 'held'],
      ['linked', 'checking-out', true, false, 'waiting'],
      ['linked', 'unlinked', true, false, 'idle'],
      ['linked', 'linked', false, false, 'in_unit'],
      ['linked', 'linked', true, false, 'idle'],
      ['ending', 'linked', false, false, 'closing'],
      ['refusing', 'unlinked', true, false, 'closing'],
    ];
    for (const [client, upstream, quiet, holding, expected] of cases) {
      assert.equal(clientState(connection(client, upstream, quiet), holding), expected, `${client}/${upstream}`);
    }
  });

  it('count time in a state from the last transition, or from the first look when no transition marks it', () => {
    let now = 1000;
    const states = new ClientStates(() => now);
    const busy = connection('linked', 'linked', false, 400);
    assert.deepEqual(
      states.clients([busy], 'session', false).clients.map((c) => [c.state, c.stateSeconds, c.queries]),
      [['in_unit', 0.6, 4]],
    );
    now = 3000;
    assert.equal(states.clients([busy], 'session', false).clients[0]?.stateSeconds, 2.6);
    // Idle in session mode without a transition: counted from this look.
    const session = { ...busy };
    const states2 = new ClientStates(() => now);
    states2.observe(session, false);
    now = 4000;
    Object.assign(session, { quiet: true, openQueries: 0 });
    assert.deepEqual(states2.observe(session, false), { state: 'idle', sinceMs: 4000, observedMs: 4000 });
  });

  it('show a pool key as a short hash that does not contain it', () => {
    const key = '5.8/0/principal-digest';
    assert.match(keyHash(key), /^[0-9a-f]{8}$/);
    assert.equal(keyHash(key), keyHash(key));
    assert.notEqual(keyHash(key), keyHash(`${key}x`));
  });
});
