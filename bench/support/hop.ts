/**
 * TCP hops the benchmark puts between a client and a server, each in a process of its own
 * (bench/hop-main.ts) so that its CPU is neither the client's nor the sidecar's:
 *
 * - a **bare pipe** (`delayMs` 0): `socket.on('data', (d) => other.write(d))` both ways and nothing
 *   else, no parsing: the floor for any proxy written in Node.js, measured beside the sidecar's proxy;
 * - a **delaying hop** (`delayMs` > 0): every chunk is written on after `delayMs`, in order, in both
 *   directions, so a connection across it sees a round trip of 2 x `delayMs` more, like a server in
 *   another zone, and its TCP connect costs a round trip too. TLS passes through it untouched (the
 *   client and Neo4j talk TLS end to end).
 *
 * Both listen on 127.0.0.1 and connect to 127.0.0.1 only.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { processCpuSeconds } from './machine.ts';

export interface HopOptions {
  targetPort: number;
  /** One-way delay added to every chunk, milliseconds; 0 is a bare pipe. */
  delayMs: number;
}

/**
 * Writes chunks on after a fixed delay, in arrival order (one timer for the queue's head), and none
 * before `notBefore` (performance.now() time).
 */
function delayedWriter(target: net.Socket, delayMs: number, notBefore = 0): { push(chunk: Buffer | null): void } {
  const queue: Array<{ dueAt: number; chunk: Buffer | null }> = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const now = performance.now();
    while (queue.length > 0 && queue[0]!.dueAt <= now + 0.5) {
      const { chunk } = queue.shift()!;
      if (target.destroyed) return;
      if (chunk === null) target.end();
      else target.write(chunk);
    }
    if (queue.length > 0) schedule(queue[0]!.dueAt);
  };
  function schedule(dueAt: number): void {
    scheduled = true;
    setTimeout(flush, Math.max(0, dueAt - performance.now()));
  }
  return {
    push(chunk) {
      const dueAt = Math.max(performance.now() + delayMs, notBefore);
      queue.push({ dueAt, chunk });
      if (!scheduled) schedule(dueAt);
    },
  };
}

function relay(client: net.Socket, server: net.Socket, delayMs: number): void {
  client.setNoDelay(true);
  server.setNoDelay(true);
  const fail = () => {
    client.destroy();
    server.destroy();
  };
  client.on('error', fail);
  server.on('error', fail);
  client.on('close', () => server.destroy());
  server.on('close', () => client.destroy());
  if (delayMs <= 0) {
    client.on('data', (data: Buffer) => server.write(data));
    server.on('data', (data: Buffer) => client.write(data));
    client.on('end', () => server.end());
    server.on('end', () => client.end());
    return;
  }
  // The client's TCP connect completed at once (the kernel accepted it on loopback); across a real
  // link it takes a round trip, so its first bytes reach the server no sooner than 3 x delayMs from
  // now (SYN, SYN-ACK, then the data), as they would after a remote connect.
  const toServer = delayedWriter(server, delayMs, performance.now() + 3 * delayMs);
  const toClient = delayedWriter(client, delayMs);
  client.on('data', (data: Buffer) => toServer.push(data));
  server.on('data', (data: Buffer) => toClient.push(data));
  client.on('end', () => toServer.push(null));
  server.on('end', () => toClient.push(null));
}

/** Starts a hop in this process; answers the port it listens on. */
export async function startHop(options: HopOptions): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: options.targetPort, allowHalfOpen: true });
    relay(client, upstream, options.delayMs);
  });
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((resolveClose) => server.close(() => resolveClose())),
  };
}

const mainScript = join(dirname(fileURLToPath(import.meta.url)), '..', 'hop-main.ts');

/** A hop in a child process, stopped when the benchmark ends (it also exits when our stdin closes). */
export class HopProcess {
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    readonly port: number,
  ) {}

  static async start(options: HopOptions): Promise<HopProcess> {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', mainScript, String(options.targetPort), String(options.delayMs)],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4000);
    });
    const first = await createInterface({ input: child.stdout })[Symbol.asyncIterator]().next();
    if (first.done) throw new Error(`the hop exited during start-up: ${stderr.trim()}`);
    return new HopProcess(child, (JSON.parse(first.value) as { port: number }).port);
  }

  get pid(): number {
    return this.child.pid!;
  }

  cpuSeconds(): number {
    return processCpuSeconds(this.pid) ?? Number.NaN;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolveExit) => this.child.once('exit', () => resolveExit()));
    this.child.kill('SIGTERM');
    await exited;
  }
}
