/**
 * ensurePrometheus(): the Prometheus server for the dashboard-query test. Debian's `prometheus`
 * package ships it together with promtool, so this reuses ensurePromtool() (promtool.ts), which
 * installs that package, rather than installing it a second way.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { run } from './common.ts';
import { ensurePromtool } from './promtool.ts';

export interface PrometheusTools {
  prometheus: string;
  promtool: string;
  /** The version the server reports, e.g. "2.42.0". */
  version: string;
}

export async function ensurePrometheus(log: (line: string) => void = () => {}): Promise<PrometheusTools> {
  const promtool = await ensurePromtool(log);
  const prometheus = [join(dirname(promtool), 'prometheus'), '/usr/bin/prometheus'].find((path) => existsSync(path));
  if (!prometheus) throw new Error(`promtool is at ${promtool} but the prometheus server binary is missing`);
  const { stdout, stderr } = await run(prometheus, ['--version']);
  const version = /version (\d+\.\d+\.\d+)/.exec(`${stdout}\n${stderr}`)?.[1] ?? 'unknown';
  return { prometheus, promtool, version };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await ensurePrometheus((line) => console.error(line))));
}
