/**
 * The second Neo4j line the tests cover: calendar-versioned Neo4j (2025.10+), the first to speak
 * Bolt 6, which needs a Java 21+ runtime next to the Java 17 the 5.26 LTS runs on.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { isExecutable } from '../tools/common.ts';

/** Latest org.neo4j:neo4j release on Maven Central when this was written; speaks Bolt up to 6.1. */
export const MODERN_NEO4J_VERSION = '2026.08.1';

/** Neo4j 2025.x and 2026.x refuse to start on Java 17. */
const modernNeo4jMinimumJavaMajor = 21;

export interface FindJdkOptions {
  minimumMajor?: number;
  /** Folder whose subfolders are JDKs; /usr/lib/jvm (Debian, Ubuntu, Adoptium packages) by default. */
  searchRoot?: string;
}

/** `17.0.15` -> 17, `1.8.0_402` -> 8. */
function javaMajor(version: string): number | undefined {
  const match = /^(\d+)(?:\.(\d+))?/.exec(version);
  if (!match) return undefined;
  const first = Number(match[1]);
  return first === 1 && match[2] ? Number(match[2]) : first;
}

/** Reads the JDK's `release` file; asks the binary itself only when that file is missing. */
function jdkMajor(javaHome: string): number | undefined {
  const releaseFile = join(javaHome, 'release');
  if (existsSync(releaseFile)) {
    const match = /^JAVA_VERSION="([^"]+)"/m.exec(readFileSync(releaseFile, 'utf8'));
    if (match?.[1]) return javaMajor(match[1]);
  }
  // `java -version` prints to stderr; -XshowSettings:properties adds a parseable line.
  const probe = spawnSync(join(javaHome, 'bin', 'java'), ['-XshowSettings:properties', '-version'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  const match = /java\.specification\.version = (\S+)/.exec(`${probe.stdout ?? ''}${probe.stderr ?? ''}`);
  return match?.[1] ? javaMajor(match[1]) : undefined;
}

/**
 * A JDK home that can run Neo4j 2025.x/2026.x: NEO4J_MODERN_JAVA_HOME when set, else the newest
 * JDK >= 21 under /usr/lib/jvm; undefined when there is none (callers skip those tests).
 */
export function findModernJdk(options: FindJdkOptions = {}): string | undefined {
  const minimumMajor = options.minimumMajor ?? modernNeo4jMinimumJavaMajor;
  const explicit = process.env.NEO4J_MODERN_JAVA_HOME;
  if (explicit && options.searchRoot === undefined) {
    const major = isExecutable(join(explicit, 'bin', 'java')) ? jdkMajor(explicit) : undefined;
    if (major !== undefined && major >= minimumMajor) return explicit;
  }
  const searchRoot = options.searchRoot ?? '/usr/lib/jvm';
  let entries: string[];
  try {
    entries = readdirSync(searchRoot);
  } catch {
    return undefined;
  }
  const seen = new Set<string>();
  let best: { home: string; major: number } | undefined;
  for (const entry of entries.sort()) {
    const candidate = join(searchRoot, entry);
    let home: string;
    try {
      // Distributions add alias symlinks (java-1.17.0-openjdk-amd64 -> java-17-openjdk-amd64).
      home = realpathSync(candidate);
    } catch {
      continue;
    }
    if (seen.has(home) || !isExecutable(join(home, 'bin', 'java'))) continue;
    seen.add(home);
    const major = jdkMajor(home);
    if (major !== undefined && major >= minimumMajor && (!best || major > best.major)) best = { home, major };
  }
  return best?.home;
}
