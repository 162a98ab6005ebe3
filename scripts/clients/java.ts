/**
 * The official Neo4j Java driver as a runnable scenario client (test/clients/java), for tests that
 * need a non-JS client.
 *
 * Built once with Maven into .cache/java-client/<key>/, where the key hashes the pom, the sources and
 * the selected driver version: editing any of them rebuilds, nothing else does.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../neo4j/local-neo4j.ts';
import { withCacheLock } from '../tools/cache-lock.ts';

const execFileAsync = promisify(execFile);

export const javaClientDir = join(repoRoot, 'test', 'clients', 'java');
const cacheRoot = join(repoRoot, '.cache', 'java-client');

/** Driver lines the pom pins: '5' is the pom default, '6' its `driver-6` profile. */
export type JavaDriverLine = '5' | '6';

export interface JavaClientOptions {
  driverLine?: JavaDriverLine;
  /** Any released driver version; overrides `driverLine`. */
  driverVersion?: string;
  /** JDK that runs the client (and Maven); JAVA_HOME, else `java`/`mvn` on PATH. Needs Java 17+. */
  javaHome?: string;
  log?: (line: string) => void;
}

/** How to start the client: append the scenario CLI arguments to `args`. */
export interface JavaClientCommand {
  command: string;
  args: string[];
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map(async (entry) => {
      const path = join(dir, entry.name);
      return entry.isDirectory() ? listFiles(path) : [path];
    }),
  );
  return nested.flat().sort();
}

async function buildKey(mavenSelection: string[]): Promise<string> {
  const hash = createHash('sha256');
  hash.update(mavenSelection.join('\0'));
  const inputs = [join(javaClientDir, 'pom.xml'), ...(await listFiles(join(javaClientDir, 'src')))];
  for (const file of inputs) {
    hash.update(`\0${relative(javaClientDir, file)}\0`);
    hash.update(await readFile(file));
  }
  return hash.digest('hex').slice(0, 16);
}

/** Every source edit makes a new key; without this the cache would keep one jar per edit forever. */
async function removeOutdatedBuilds(currentEntryDir: string, selection: string): Promise<void> {
  for (const entry of await readdir(cacheRoot, { withFileTypes: true })) {
    const entryDir = join(cacheRoot, entry.name);
    if (!entry.isDirectory() || entryDir === currentEntryDir) continue;
    const builtFor = await readFile(join(entryDir, '.complete'), 'utf8').catch(() => undefined);
    if (builtFor?.trim() === selection) await rm(entryDir, { recursive: true, force: true });
  }
}

/** Builds the shaded jar once per pom/source/driver version and returns how to run it. */
export async function ensureJavaClient(options: JavaClientOptions = {}): Promise<JavaClientCommand> {
  const log = options.log ?? (() => {});
  const mavenSelection = options.driverVersion
    ? [`-Dneo4j-java-driver.version=${options.driverVersion}`]
    : options.driverLine === '6'
      ? ['-Pdriver-6']
      : [];
  const javaHome = options.javaHome ?? process.env.JAVA_HOME;
  const entryDir = join(cacheRoot, await buildKey(mavenSelection));
  const buildDir = join(entryDir, 'build');
  const jar = join(buildDir, 'scenario-client.jar');
  const marker = join(entryDir, '.complete');
  const command: JavaClientCommand = {
    command: javaHome ? join(javaHome, 'bin', 'java') : 'java',
    // A short-lived CLI: start-up time matters more than peak throughput.
    args: ['-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Xss512k', '-jar', jar],
  };

  if (existsSync(marker) && existsSync(jar)) return command;
  return withCacheLock(`${entryDir}.lock`, async () => {
    if (existsSync(marker) && existsSync(jar)) return command;
    log(`building the Java scenario client into ${buildDir} (first run only)...`);
    await rm(buildDir, { recursive: true, force: true });
    const env = javaHome ? { ...process.env, JAVA_HOME: javaHome } : process.env;
    await execFileAsync(
      'mvn',
      [
        '-q',
        '-B',
        '-f',
        join(javaClientDir, 'pom.xml'),
        'package',
        `-Dscenario.buildDirectory=${buildDir}`,
        ...mavenSelection,
      ],
      { env, maxBuffer: 64 * 1024 * 1024 },
    );
    if (!existsSync(jar)) throw new Error(`Maven finished but did not produce ${jar}`);
    const selection = mavenSelection.join(' ');
    await writeFile(marker, `${selection}\n`);
    await removeOutdatedBuilds(entryDir, selection);
    return command;
  });
}
