/**
 * ensureDebianPackages(): installs Debian packages with apt-get when the files they provide are
 * missing. dpkg owns what it installs, so nothing is cached under .cache/tools; the check is for the
 * files themselves, which makes every call after the first free.
 */
import { existsSync } from 'node:fs';
import { type ProgressLog, run, whichExecutable, withToolLock } from './common.ts';

export async function ensureDebianPackages(
  packages: readonly string[],
  provides: readonly string[],
  log: ProgressLog = () => {},
): Promise<void> {
  const missing = () => provides.filter((path) => !existsSync(path));
  if (missing().length === 0) return;
  await withToolLock('apt', async () => {
    if (missing().length === 0) return;
    const aptGet = await whichExecutable('apt-get');
    if (!aptGet)
      throw new Error(`${missing().join(', ')} missing and there is no apt-get to install ${packages.join(' ')}`);
    const env = {
      ...process.env,
      DEBIAN_FRONTEND: 'noninteractive',
      // Maintainer scripts would start system services (a Prometheus on :9090); runlevel 1 tells
      // invoke-rc.d not to, since the tests run their own servers on free ports.
      RUNLEVEL: '1',
    };
    const started = Date.now();
    log(`apt-get update, then apt-get install ${packages.join(' ')}...`);
    await run(aptGet, ['update', '-q'], { env });
    await run(
      aptGet,
      ['install', '-y', '-q', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=600', ...packages],
      { env },
    );
    const still = missing();
    if (still.length > 0) throw new Error(`apt-get installed ${packages.join(' ')} but ${still.join(', ')} is missing`);
    log(`${packages.join(' ')} installed in ${Math.round((Date.now() - started) / 1000)} s`);
  });
}
