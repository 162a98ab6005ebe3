/**
 * The contracts between the sidecar's parts: what a component is, what it is given, what an extra
 * CLI command looks like, and the version. Proxy, probes and alerts implement these; the server and
 * the CLI consume them; none of them has to import the others for it.
 *
 * Imports from src are `import type` only, so loading this module loads nothing else of the sidecar:
 * the contracts name the real config, recorder and logger types (rather than structural copies that
 * could drift from them), and the compiler erases those imports. test/layering.test.ts holds it to that.
 */
import { readFileSync } from 'node:fs';
import type { Driver } from 'neo4j-driver';
import type { SidecarConfig } from './config/schema.ts';
import type { CredentialsGate } from './driver/credentials.ts';
import type { DriverLog } from './driver/driver-log.ts';
import type { InstrumentedDriver } from './instrument/driver.ts';
import type { Logger } from './logger.ts';
import type { Recorder } from './metrics/recorder.ts';
import type { StatsdSink } from './metrics/statsd.ts';

/** Read from package.json at run time: the same relative path holds from src/ and dist/. */
export const SIDECAR_VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** A part of the sidecar with a lifecycle (proxy, probes, alerts). */
export interface Component {
  readonly name: string;
  start(): Promise<void>;
  /** Stop accepting work, let in-flight work finish (bounded by the grace period), release resources. */
  stop(): Promise<void>;
  /** Contributes to /readyz; absent means the component does not gate readiness. */
  readiness?(): Promise<{ ok: boolean; detail?: string }>;
  /** Contributes a section to /status. */
  status?(): Record<string, unknown>;
}

/** What component factories get: the shared pieces, passed in rather than reached for. */
export interface SidecarContext {
  config: SidecarConfig;
  recorder: Recorder;
  driver: Driver;
  /** `driver`'s pool as instrumented: how many connections the sidecar itself has opened to Neo4j. */
  ownPool: InstrumentedDriver;
  /** Every Neo4j operation goes through `credentials.run`; every driver built takes its auth from it. */
  credentials: CredentialsGate;
  /** The log of every driver the sidecar builds (createSidecarDriver): an outage is one line, not one per driver. */
  driverLog: DriverLog;
  logger: Logger;
  statsd: StatsdSink | undefined;
}

export type ComponentFactory = (context: SidecarContext) => Component | undefined;

/** Exit codes of the CLI and of every extra command: 2 means nothing was started (bad usage or config). */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** The CLI's view of the outside world; tests pass their own. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

/** Commands other than `run`, registered by the parts of the sidecar that own them. */
export interface ExtraCommand {
  (config: SidecarConfig, io: CliIo, args: readonly string[]): Promise<number> | number;
  /** The command parses options of its own (given as `args`); otherwise any unknown option is a usage error. */
  readonly takesArguments?: boolean;
}
