/** The verbs' options and what they print; the commands against a live sidecar are in commands.test.ts. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describePause, describeRunning } from '../../src/admin/index.ts';
import { parseVerbArgs } from '../../src/admin/maintenance-commands.ts';
import { parseTopArgs } from '../../src/admin/top.ts';
import { countByState } from '../../src/proxy/index.ts';

describe('the maintenance verbs', () => {
  it('take a drain timeout for pause only, in whole seconds up to 600', () => {
    assert.deepEqual(parseVerbArgs('pause', ['--drain-timeout', '45']), { json: false, drainTimeoutSeconds: 45 });
    assert.deepEqual(parseVerbArgs('pause', ['--drain-timeout=0', '--json']), { json: true, drainTimeoutSeconds: 0 });
    for (const bad of ['-1', '601', '2.5', 'x']) {
      assert.match(String(parseVerbArgs('pause', ['--drain-timeout', bad])), /--drain-timeout must be/);
    }
    assert.match(
      String(parseVerbArgs('resume', ['--drain-timeout', '5'])),
      /unknown option --drain-timeout for resume/,
    );
    assert.match(String(parseVerbArgs('reconnect', ['--url', 'ftp://x'])), /--url needs/);
  });

  it('say what still runs after a drain timed out, naming only what is there', () => {
    const running = {
      clients: countByState(['in_unit', 'in_unit', 'held', 'idle']),
      unitsInFlight: 2,
      queriesInFlight: 1,
      upstreamsLent: 2,
    };
    assert.equal(
      describeRunning(running),
      'clients: 2 in_unit, 1 idle, 1 held; in flight: 2 units, 1 query, 2 upstreams lent',
    );
    const text = describePause({
      drained: false,
      paused: true,
      pausedSince: '2026-12-07T17:00:00.000Z',
      maxPauseSeconds: 300,
      waitedSeconds: 30,
      running,
    });
    assert.match(text, /NOT drained after 30\.0 s: clients: 2 in_unit.*The pause stays on/);
  });

  it('top takes --once, an interval and a URL', () => {
    assert.deepEqual(parseTopArgs(['--once', '--interval', '2']), { once: true, intervalMs: 2000 });
    assert.match(String(parseTopArgs(['--interval', '0'])), /--interval must be/);
    assert.match(String(parseTopArgs(['--sort'])), /unknown option --sort for top/);
  });
});
