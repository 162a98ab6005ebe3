/**
 * ensureHelm(): the helm CLI, built from source with `go install` into .cache/tools/bin (the Go
 * module proxy is reachable where no release binaries are). The first build on a machine takes
 * minutes; later calls return the cached binary at once.
 */
import { goInstall, type ProgressLog } from './common.ts';

export const HELM_MODULE = 'helm.sh/helm/v3/cmd/helm';
/** Pinned so that lint and template results cannot change under us between runs. */
export const HELM_VERSION = 'v3.22.0';

export function ensureHelm(log: ProgressLog = () => {}): Promise<string> {
  return goInstall('helm', HELM_MODULE, HELM_VERSION, log);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await ensureHelm((line) => console.error(line)));
}
