/**
 * Dashboard linters.
 *
 * ensureGrafanaDashboardLinter(): grafana/dashboard-linter itself, `go install`ed at a pinned
 * commit. The Go module proxy this project builds from refuses that module (403 "This module
 * version is not available", as it does for two of its dependencies), so this fails quickly here;
 * callers treat the failure as "not available" and say so.
 *
 * ensureDashboardLintPort(): scripts/tools/dashboard-lint, this repository's port of the same
 * rules onto Prometheus's own PromQL parser, built with `go build` into .cache/tools/bin. It is the
 * lint gate wherever the real linter cannot be installed.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot } from '../neo4j/local-neo4j.ts';
import {
  cachedVersion,
  goInstall,
  type ProgressLog,
  recordVersion,
  run,
  toolsBin,
  whichExecutable,
  withToolLock,
} from './common.ts';

export const GRAFANA_DASHBOARD_LINTER_MODULE = 'github.com/grafana/dashboard-linter';
/** Commit 4d0844b (2026-06-18), the newest when this was pinned; the project tags no releases. */
export const GRAFANA_DASHBOARD_LINTER_VERSION = 'v0.0.0-20260618155201-4d0844b40d49';

export type LinterAvailability = { available: true; path: string } | { available: false; reason: string };

export async function ensureGrafanaDashboardLinter(log: ProgressLog = () => {}): Promise<LinterAvailability> {
  try {
    const path = await goInstall(
      'dashboard-linter',
      GRAFANA_DASHBOARD_LINTER_MODULE,
      GRAFANA_DASHBOARD_LINTER_VERSION,
      log,
    );
    return { available: true, path };
  } catch (error) {
    const firstLines = (error as Error).message.split('\n').slice(0, 3).join(' ').slice(0, 400);
    return { available: false, reason: firstLines };
  }
}

const portSource = join(repoRoot, 'scripts', 'tools', 'dashboard-lint');

/** A hash of the port's sources: the cached binary is rebuilt whenever they change. */
async function portSourceHash(): Promise<string> {
  const hash = createHash('sha256');
  for (const name of (await readdir(portSource)).sort()) {
    if (!/\.(go|mod|sum)$/.test(name)) continue;
    hash.update(name);
    hash.update(await readFile(join(portSource, name)));
  }
  return hash.digest('hex').slice(0, 16);
}

export async function ensureDashboardLintPort(log: ProgressLog = () => {}): Promise<string> {
  const binary = join(toolsBin, 'dashboard-lint');
  const version = await portSourceHash();
  if (existsSync(binary) && (await cachedVersion('dashboard-lint')) === version) return binary;
  return withToolLock('dashboard-lint', async () => {
    if (existsSync(binary) && (await cachedVersion('dashboard-lint')) === version) return binary;
    const go = await whichExecutable('go');
    if (!go) throw new Error('building scripts/tools/dashboard-lint needs the Go toolchain (go) on PATH');
    await mkdir(toolsBin, { recursive: true });
    log('building scripts/tools/dashboard-lint (first run on this machine downloads the Prometheus module)...');
    const started = Date.now();
    await run(go, ['build', '-o', binary, '.'], {
      cwd: portSource,
      env: { ...process.env, GOWORK: 'off', CGO_ENABLED: '0', GOFLAGS: '-mod=readonly' },
    });
    await recordVersion('dashboard-lint', version);
    log(`dashboard-lint built in ${Math.round((Date.now() - started) / 1000)} s`);
    return binary;
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const log = (line: string) => console.error(line);
  console.log(`port: ${await ensureDashboardLintPort(log)}`);
  console.log(`grafana/dashboard-linter: ${JSON.stringify(await ensureGrafanaDashboardLinter(log))}`);
}
