/**
 * ensurePrometheus(): Debian's `prometheus` package, which ships both the server (for the
 * dashboard-query test) and promtool (for rule checks). Installed with apt-get when missing;
 * nothing is cached under .cache/tools because dpkg owns these files.
 */
import { existsSync } from 'node:fs';
import { type ProgressLog, run, whichExecutable, withToolLock } from './common.ts';

export interface PrometheusTools {
  prometheus: string;
  promtool: string;
  /** The version the server reports, e.g. "2.42.0". */
  version: string;
}

const DEBIAN_PACKAGE = 'prometheus';

async function findInstalled(): Promise<Omit<PrometheusTools, 'version'> | undefined> {
  const prometheus =
    (await whichExecutable('prometheus')) ?? (existsSync('/usr/bin/prometheus') ? '/usr/bin/prometheus' : undefined);
  const promtool =
    (await whichExecutable('promtool')) ?? (existsSync('/usr/bin/promtool') ? '/usr/bin/promtool' : undefined);
  return prometheus && promtool ? { prometheus, promtool } : undefined;
}

async function serverVersion(prometheus: string): Promise<string> {
  const { stdout, stderr } = await run(prometheus, ['--version']);
  const match = /version (\d+\.\d+\.\d+)/.exec(`${stdout}\n${stderr}`);
  return match?.[1] ?? 'unknown';
}

export async function ensurePrometheus(log: ProgressLog = () => {}): Promise<PrometheusTools> {
  const found = await findInstalled();
  if (found) return { ...found, version: await serverVersion(found.prometheus) };
  return withToolLock('apt-prometheus', async () => {
    const again = await findInstalled();
    if (again) return { ...again, version: await serverVersion(again.prometheus) };
    const aptGet = await whichExecutable('apt-get');
    if (!aptGet) throw new Error('prometheus and promtool are missing and there is no apt-get to install them');
    const env = {
      ...process.env,
      DEBIAN_FRONTEND: 'noninteractive',
      // The package's maintainer scripts would start a system-wide Prometheus on :9090; runlevel 1 tells
      // invoke-rc.d not to start services, since tests run their own server on a free port.
      RUNLEVEL: '1',
    };
    const started = Date.now();
    log('apt-get update (installing prometheus)...');
    await run(aptGet, ['update', '-q'], { env });
    log(`apt-get install ${DEBIAN_PACKAGE}...`);
    await run(
      aptGet,
      ['install', '-y', '-q', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=600', DEBIAN_PACKAGE],
      { env },
    );
    const installed = await findInstalled();
    if (!installed) throw new Error(`apt-get installed ${DEBIAN_PACKAGE} but prometheus or promtool is still missing`);
    log(`prometheus installed in ${Math.round((Date.now() - started) / 1000)} s`);
    return { ...installed, version: await serverVersion(installed.prometheus) };
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const tools = await ensurePrometheus((line) => console.error(line));
  console.log(JSON.stringify(tools));
}
