/**
 * A second host for tests that must be reached from outside loopback: a network namespace of the
 * test's own, joined to this one by a veth pair on a /30 of 10.231.0.0/16 that nothing else uses.
 * Requests made from it reach a listener on 0.0.0.0 with a non-loopback peer address, for real, as a
 * pod's neighbour would. Needs root (CI and the developers' machines run as root) and iproute2.
 */
import { execFileSync, spawnSync } from 'node:child_process';

export interface ClientHost {
  /** This host's address as the namespace sees it: where its requests go. */
  readonly hostAddress: string;
  /** The namespace's own address: the peer address a listener here sees. */
  readonly clientAddress: string;
  /** Runs `node -e script` inside the namespace; resolves with its stdout. */
  node(script: string): string;
  remove(): void;
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function createClientHost(): ClientHost {
  const slot = process.pid % 16_000;
  const name = `nps-client-${process.pid}`;
  const outer = `npso${process.pid}`.slice(0, 15);
  const inner = `npsi${process.pid}`.slice(0, 15);
  // A /30 per process: .1 here, .2 in the namespace.
  const base = `10.231.${Math.floor((slot * 4) / 256)}.${(slot * 4) % 256}`;
  const octets = base.split('.').map(Number);
  const address = (offset: number) => `${octets[0]}.${octets[1]}.${octets[2]}.${(octets[3] ?? 0) + offset}`;
  const hostAddress = address(1);
  const clientAddress = address(2);
  const remove = () => {
    spawnSync('ip', ['link', 'del', outer], { stdio: 'ignore' });
    spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  };
  remove();
  try {
    ip('netns', 'add', name);
    ip('link', 'add', outer, 'type', 'veth', 'peer', 'name', inner);
    ip('link', 'set', inner, 'netns', name);
    ip('addr', 'add', `${hostAddress}/30`, 'dev', outer);
    ip('link', 'set', outer, 'up');
    ip('netns', 'exec', name, 'ip', 'addr', 'add', `${clientAddress}/30`, 'dev', inner);
    ip('netns', 'exec', name, 'ip', 'link', 'set', inner, 'up');
    ip('netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up');
  } catch (error) {
    remove();
    throw new Error('could not make a client host (needs root and iproute2)', { cause: error });
  }
  return {
    hostAddress,
    clientAddress,
    node(script) {
      const result = spawnSync('ip', ['netns', 'exec', name, process.execPath, '-e', script], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      if (result.status !== 0) throw new Error(`node in ${name} failed: ${result.stderr}`);
      return result.stdout;
    },
    remove,
  };
}
