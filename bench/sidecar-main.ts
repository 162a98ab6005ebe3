/**
 * The sidecar as the benchmark runs it: its own process (so its CPU and memory can be measured from
 * outside, and the load generator does not share its event loop), the program's default components
 * (probes, alerts and the Bolt proxy), configured from the environment exactly
 * as `neo4j-pool-sidecar run` is. BENCH_SYNTHETIC_FLEET=10x5 adds a fleet's worth of series.
 *
 * Prints one JSON line when it is up: {"httpPort", "components"}. Stops on SIGTERM.
 */
import { defaultComponents } from '../src/components.ts';
import { loadConfig } from '../src/config/index.ts';
import { createLogger } from '../src/logger.ts';
import { startSidecar } from '../src/server/index.ts';
import { recordSyntheticFleet } from './support/synthetic-series.ts';

const config = loadConfig({ env: process.env });
const logger = createLogger({ level: config.log.level, pretty: 'never', destination: process.stderr });
const sidecar = await startSidecar(config, { logger, components: defaultComponents });

const fleet = /^(\d+)x(\d+)$/.exec(process.env.BENCH_SYNTHETIC_FLEET ?? '');
if (fleet) recordSyntheticFleet(sidecar.recorder, { pools: Number(fleet[1]), databases: Number(fleet[2]) });

process.stdout.write(
  `${JSON.stringify({
    httpPort: sidecar.httpAddress.port,
    components: sidecar.components.map((component) => component.name),
  })}\n`,
);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await sidecar.stop();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
// The benchmark closes our stdin when it ends, even when it is killed: do not outlive it.
process.stdin.on('end', () => void stop());
process.stdin.resume();
