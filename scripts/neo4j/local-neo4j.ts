/**
 * A real Neo4j Community server for tests, benchmarks and the local demo.
 *
 * The server jars come from Maven Central (scripts/neo4j/pom.xml) and are cached in
 * .cache/neo4j/<version>/lib, so only the first run on a machine pays the download.
 * Each instance gets a fresh home under .cache/neo4j/instances with auth enabled and a
 * known password, listens on 127.0.0.1 only, and is stopped with SIGTERM like `neo4j stop`.
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import neo4j from 'neo4j-driver';
import { spawnOnLeash } from '../tools/leash.ts';

const execFileAsync = promisify(execFile);

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cacheRoot = join(repoRoot, '.cache', 'neo4j');

/** The LTS line the sidecar is built against; runs on Java 17. */
export const DEFAULT_NEO4J_VERSION = '5.26.30';
export const DEFAULT_TEST_PASSWORD = 'local-test-password';

export interface LocalNeo4jOptions {
  /** Neo4j version on Maven Central (5.26.x, or 2025.x/2026.x which need `javaHome` >= 21). */
  version?: string;
  /** Bolt port on 127.0.0.1; 0 (default) picks a free one. */
  boltPort?: number;
  password?: string;
  /** Names the instance folder, to tell instances apart in .cache/neo4j/instances. */
  name?: string;
  /** JDK to run the server with; defaults to JAVA_HOME or the `java` on PATH. */
  javaHome?: string;
  heap?: string;
  /** Extra neo4j.conf lines. */
  extraConfig?: Record<string, string>;
  /** Where progress lines go; silent by default. */
  log?: (line: string) => void;
}

export interface LocalNeo4j {
  readonly uri: string;
  readonly boltPort: number;
  readonly username: string;
  readonly password: string;
  readonly version: string;
  readonly home: string;
  /**
   * Process id of the running JVM (not of the bash leash around it), for tests that freeze the server
   * with SIGSTOP; undefined while it is stopped.
   */
  pid(): number | undefined;
  /** Stops the server process (SIGTERM, then SIGKILL after 30 s). Data is kept for start(). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data after stop(). */
  start(): Promise<void>;
  /** Stops and deletes the instance folder. */
  destroy(): Promise<void>;
}

/** Downloads (once) the server jars for a version and returns the folder that holds them. */
export async function ensureNeo4jJars(
  version = DEFAULT_NEO4J_VERSION,
  log: (line: string) => void = () => {},
): Promise<string> {
  const libDir = join(cacheRoot, version, 'lib');
  const marker = join(cacheRoot, version, '.complete');
  if (existsSync(marker)) return libDir;
  log(`fetching Neo4j ${version} from Maven Central (first run only)...`);
  await rm(libDir, { recursive: true, force: true });
  await mkdir(libDir, { recursive: true });
  await execFileAsync(
    'mvn',
    [
      '-q',
      '-B',
      '-f',
      join(repoRoot, 'scripts', 'neo4j', 'pom.xml'),
      'dependency:copy-dependencies',
      '-DincludeScope=runtime',
      `-Dneo4j.version=${version}`,
      `-DoutputDirectory=${libDir}`,
    ],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  const jars = await readdir(libDir);
  if (!jars.some((name) => name.startsWith('neo4j-') && name.endsWith('.jar'))) {
    throw new Error(`Maven finished but ${libDir} holds no Neo4j jars`);
  }
  await writeFile(marker, `${new Date().toISOString()}\n`);
  return libDir;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** The server's main class was renamed with the calendar-versioned releases (2025.01 onwards). */
function communityEntryPoint(version: string): string {
  return /^[1-5]\./.test(version) ? 'org.neo4j.server.CommunityEntryPoint' : 'org.neo4j.server.Neo4jCommunity';
}

function javaBinary(javaHome: string | undefined): string {
  return javaHome ? join(javaHome, 'bin', 'java') : 'java';
}

/** Set by `npm run test:unit`: a test that starts Neo4j there was misfiled, and fails saying so. */
export const UNIT_RUN_ENV = 'NEO4J_POOL_SIDECAR_UNIT_RUN';

export async function startLocalNeo4j(options: LocalNeo4jOptions = {}): Promise<LocalNeo4j> {
  if (process.env[UNIT_RUN_ENV]) {
    throw new Error('this test starts Neo4j, so it is not a unit test: scripts/test-files.ts should have left it out');
  }
  const version = options.version ?? DEFAULT_NEO4J_VERSION;
  const password = options.password ?? DEFAULT_TEST_PASSWORD;
  const log = options.log ?? (() => {});
  const libDir = await ensureNeo4jJars(version, log);
  const boltPort = options.boltPort && options.boltPort > 0 ? options.boltPort : await freePort();
  const home = join(cacheRoot, 'instances', `${options.name ?? 'neo4j'}-${version}-${boltPort}`);
  const java = javaBinary(options.javaHome ?? process.env.NEO4J_JAVA_HOME);

  await rm(home, { recursive: true, force: true });
  for (const sub of ['conf', 'data', 'logs', 'plugins', 'import', 'run']) {
    await mkdir(join(home, sub), { recursive: true });
  }
  const config: Record<string, string> = {
    'server.default_listen_address': '127.0.0.1',
    'server.bolt.listen_address': `127.0.0.1:${boltPort}`,
    'server.bolt.advertised_address': `127.0.0.1:${boltPort}`,
    'server.http.enabled': 'false',
    'server.https.enabled': 'false',
    'dbms.security.auth_enabled': 'true',
    'dbms.usage_report.enabled': 'false',
    // Tests log in with wrong passwords on purpose; the default lockout (3 failures) would then refuse
    // the right one for a few seconds and make unrelated tests flaky.
    'dbms.security.auth_max_failed_attempts': '0',
    'server.memory.pagecache.size': '64m',
    ...options.extraConfig,
  };
  await writeFile(
    join(home, 'conf', 'neo4j.conf'),
    `${Object.entries(config)
      .map(([key, value]) => `${key}=${value}`)
      .join('\n')}\n`,
  );
  const env = { ...process.env, NEO4J_HOME: home, NEO4J_CONF: join(home, 'conf') };
  const classpath = `${libDir}/*`;

  // Same as `neo4j-admin dbms set-initial-password`: must happen before the first start.
  await execFileAsync(java, ['-cp', classpath, 'org.neo4j.cli.AdminTool', 'dbms', 'set-initial-password', password], {
    env,
  });

  let child: ChildProcess | undefined;
  const uri = `bolt://127.0.0.1:${boltPort}`;
  const killOnExit = () => child?.kill('SIGKILL');

  const start = async (): Promise<void> => {
    if (child) return;
    log(`starting Neo4j ${version} on ${uri}`);
    const heap = options.heap ?? '512m';
    const proc = spawnOnLeash(
      java,
      [
        `-Xms${heap}`,
        `-Xmx${heap}`,
        '-XX:+UseSerialGC',
        '-XX:TieredStopAtLevel=1',
        '-cp',
        classpath,
        communityEntryPoint(version),
        `--home-dir=${home}`,
        `--config-dir=${join(home, 'conf')}`,
      ],
      { env, pidFile: join(home, 'run', 'server.pid') },
    );
    child = proc;
    process.once('exit', killOnExit);
    let stderr = '';
    proc.stderr?.on('data', (data: Buffer) => {
      stderr = (stderr + data.toString()).slice(-4000);
    });
    let exited = false;
    proc.once('exit', () => {
      exited = true;
      if (child === proc) child = undefined;
      process.removeListener('exit', killOnExit);
    });
    await waitForLogin(uri, password, 120_000, () => (exited ? `Neo4j exited during start-up: ${stderr}` : undefined));
    log(`Neo4j ${version} ready on ${uri}`);
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc) return;
    const exited = new Promise<void>((done) => proc.once('exit', () => done()));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  };

  await start();
  return {
    uri,
    boltPort,
    username: 'neo4j',
    password,
    version,
    home,
    start,
    stop,
    pid() {
      if (!child) return undefined;
      const pid = Number(readFileSync(join(home, 'run', 'server.pid'), 'utf8').trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    },
    async destroy() {
      await stop();
      await rm(home, { recursive: true, force: true });
    },
  };
}

/** Polls until Bolt accepts a login: a listening port alone does not mean the databases are up. */
async function waitForLogin(
  uri: string,
  password: string,
  timeoutMs: number,
  failed: () => string | undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    const reason = failed();
    if (reason) throw new Error(reason);
    const driver = neo4j.driver(uri, neo4j.auth.basic('neo4j', password), {
      connectionTimeout: 2000,
      // This loop is the retry: the driver's own backoff (1, 2, 4, 8 s...) noticed readiness ~5 s late.
      maxTransactionRetryTime: 0,
      logging: { level: 'error', logger: () => {} },
    });
    try {
      await driver.executeQuery('RETURN 1');
      return;
    } catch (error) {
      lastError = error;
    } finally {
      await driver.close();
    }
    await new Promise((done) => setTimeout(done, 250));
  }
  throw new Error(`Neo4j at ${uri} did not accept a login within ${timeoutMs} ms: ${String(lastError)}`);
}
