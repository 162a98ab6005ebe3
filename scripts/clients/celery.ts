import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, repoRoot } from '../neo4j/local-neo4j.ts';
import { ensureDebianPackages } from '../tools/debian.ts';
import { spawnOnLeash } from '../tools/leash.ts';
import { ensureVenv } from './venv.ts';

export const celeryExampleDir = join(repoRoot, 'examples', 'celery');
const requirementsFile = join(celeryExampleDir, 'requirements.txt');
const venvDir = join(repoRoot, '.cache', 'venv-celery');

export interface EnsureOptions {
  log?: (line: string) => void;
}

/** Creates the venv and installs the pinned requirements once; returns the venv's python executable. */
export async function ensureCelery(options: EnsureOptions & { basePython?: string } = {}): Promise<string> {
  return ensureVenv({ dir: venvDir, requirementsFile, ...options });
}

const REDIS_SERVER = '/usr/bin/redis-server';

/** Returns the redis-server binary, installing Debian's package first when it is missing. */
export async function ensureRedisServer(options: EnsureOptions = {}): Promise<string> {
  await ensureDebianPackages(['redis-server'], [REDIS_SERVER], options.log);
  return REDIS_SERVER;
}

export interface LocalRedis {
  /** `redis://127.0.0.1:<port>/0` */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

async function redisAnswersPing(port: number): Promise<boolean> {
  return new Promise((resolvePing) => {
    const socket = connect({ host: '127.0.0.1', port });
    let answer = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolvePing(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data: Buffer) => {
      answer += data.toString();
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
  });
}

/** Starts a private Redis on a free loopback port: no persistence, its own throwaway directory. */
export async function ensureRedis(options: EnsureOptions = {}): Promise<LocalRedis> {
  const binary = await ensureRedisServer(options);
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'neo4j-pool-sidecar-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'no',
    '--loglevel',
    'warning',
  ];
  const child = spawnOnLeash(binary, args);
  let stderr = '';
  child.stderr?.on('data', (data: Buffer) => {
    stderr = (stderr + data.toString()).slice(-4000);
  });
  let exited = false;
  const exitedPromise = new Promise<void>((done) =>
    child.once('exit', () => {
      exited = true;
      done();
    }),
  );
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const stop = async () => {
    process.removeListener('exit', killOnExit);
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exitedPromise;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 20_000;
  while (!(await redisAnswersPing(port))) {
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(`redis-server did not answer PING on 127.0.0.1:${port}: ${stderr.trim()}`);
    }
    await new Promise((done) => setTimeout(done, 100));
  }
  options.log?.(`redis-server ready on 127.0.0.1:${port}`);
  return { url: `redis://127.0.0.1:${port}/0`, port, stop };
}
