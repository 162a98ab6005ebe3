/**
 * The probes as a sidecar Component: builds the probe list from the `probes` config section, runs it
 * on the schedule, derives pool sizing advice after each run, gates /readyz on the probes that are
 * configured to, and shows the last result of each probe, the census and the sizing in /status.
 */
import neo4j, { type Driver } from 'neo4j-driver';
import { requireNeo4jUri, type SidecarConfig } from '../config/index.ts';
import { type Component, type ComponentFactory, SIDECAR_VERSION } from '../contracts.ts';
import { type CredentialsGate, createSidecarDriver, DriverLog } from '../driver/index.ts';
import type { InstrumentedDriver } from '../instrument/driver.ts';
import { createLogger, type Logger } from '../logger.ts';
import type { Recorder } from '../metrics/recorder.ts';
import { Census } from './census.ts';
import { boltEndpoint, readConnectionCounter } from './connection-counter.ts';
import {
  acquisitionProbe,
  censusProbe,
  DEFAULT_DATABASE,
  freshConnectProbe,
  type ProbeSpec,
  roundTripProbe,
} from './probes.ts';
import { type ProbeResult, ProbeScheduler } from './scheduler.ts';
import { PoolSizer } from './sizing.ts';

export interface ProbesComponentOptions {
  config: SidecarConfig;
  /** The sidecar's own pooled driver, instrumented under `ownPoolName`. */
  driver: Driver;
  /** Every probe runs through it (the census too); the fresh-connect driver takes its credentials from it. */
  credentials?: CredentialsGate;
  recorder: Recorder;
  logger?: Logger;
  /** The instrumented pool of `driver`: the census leaves the connections it opened out of the server's count. */
  ownPool: Pick<InstrumentedDriver, 'connectionsOpened'>;
  /** Where the fresh-connect probe's drivers log; default: `logger` (the sidecar passes the one all its drivers share). */
  driverLog?: DriverLog;
  /** Driver for the fresh-connect probe; default: the sidecar's driver settings with a pool of one. */
  createFreshDriver?: () => Driver;
  /** Reads the server's connection-id counter for the census; default: an unauthenticated HELLO to neo4j.uri. */
  readConnectionCounter?: () => Promise<number | undefined>;
}

export interface ProbesComponent extends Component {
  readonly scheduler: ProbeScheduler;
  readonly census: Census | undefined;
  readonly sizer: PoolSizer;
  /** Runs every due probe now and updates the sizing advice (tests, and the first run at start). */
  runOnce(): Promise<ProbeResult[]>;
}

export function createProbesComponent(options: ProbesComponentOptions): ProbesComponent {
  const { config, driver, recorder } = options;
  const probesConfig = config.probes;
  const logger = options.logger?.child({ component: 'probes' });
  /** Connections the probes open outside the pool: fresh-connect drivers and the census's counter reads. */
  let unpooledConnections = 0;
  const onConnectionOpened = () => {
    unpooledConnections++;
  };

  const ownConnectionsOpened = () => unpooledConnections + options.ownPool.connectionsOpened();

  const census = probesConfig.census.enabled
    ? new Census({
        recorder,
        topClientHosts: probesConfig.census.topClientHosts,
        longTransactionSeconds: probesConfig.census.longTransactionSeconds,
        ownConnectionsOpened,
        timeoutMs: probesConfig.timeoutMs,
      })
    : undefined;

  const driverLog =
    options.driverLog ?? new DriverLog(options.logger ?? createLogger({ level: 'silent', pretty: 'never' }));
  const createFreshDriver =
    options.createFreshDriver ??
    (() =>
      createSidecarDriver(
        {
          ...config,
          neo4j: {
            ...config.neo4j,
            maxConnectionPoolSize: 1,
            connectionTimeoutMs: Math.min(config.neo4j.connectionTimeoutMs, probesConfig.timeoutMs),
          },
        },
        driverLog,
        options.credentials?.authTokenManager ?? neo4j.auth.basic(config.neo4j.username, config.neo4j.password ?? ''),
      ));

  const databases = probesConfig.databases.length > 0 ? probesConfig.databases : [DEFAULT_DATABASE];
  const specs: ProbeSpec[] = [];
  for (const database of databases) {
    if (probesConfig.acquisition.enabled) specs.push(acquisitionProbe(driver, database, probesConfig.acquisition));
    if (probesConfig.roundTrip.enabled) specs.push(roundTripProbe(driver, database, probesConfig.roundTrip));
  }
  if (probesConfig.freshConnect.enabled) {
    specs.push(freshConnectProbe({ createDriver: createFreshDriver, onConnectionOpened }, probesConfig.freshConnect));
  }
  if (census) {
    const readCounter = options.readConnectionCounter ?? defaultCounterReader(config);
    specs.push(censusProbe(census, { driver, readCounter, onConnectionOpened }, probesConfig.census));
  }

  const sizer = new PoolSizer({
    recorder,
    windowSeconds: probesConfig.sizing.windowSeconds,
    undersizedRatio: probesConfig.sizing.undersizedRatio,
    oversizedRatio: probesConfig.sizing.oversizedRatio,
    logIntervalSeconds: probesConfig.sizing.logIntervalSeconds,
    ...(logger ? { logger } : {}),
  });

  let visibilityNote: string | undefined;
  const afterRun = () => {
    sizer.observe();
    const report = census?.last;
    if (report && report.visibilityNote !== visibilityNote) {
      visibilityNote = report.visibilityNote;
      if (visibilityNote) logger?.warn({ visibility: report.visibility }, `census: ${visibilityNote}`);
    }
  };

  const scheduler = new ProbeScheduler({
    probes: specs,
    recorder,
    schedule: probesConfig.schedule,
    timeoutMs: probesConfig.timeoutMs,
    jitterMs: probesConfig.jitterMs,
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    afterRun,
  });

  let running = false;
  // Readiness waits on the probes' last run: when Neo4j accepts the credentials again (a new password
  // file), run them now rather than at the next tick, up to 15 s away.
  options.credentials?.onChange((state) => {
    if (state === 'accepted' && running && scheduler.completedRuns > 0) void scheduler.runOnce();
  });

  return {
    name: 'probes',
    scheduler,
    census,
    sizer,
    runOnce: () => scheduler.runOnce(),
    async start() {
      running = true;
      scheduler.start();
    },
    async stop() {
      running = false;
      await scheduler.stop();
    },
    async readiness() {
      return scheduler.readiness();
    },
    status() {
      return {
        schedule: probesConfig.schedule,
        timeoutMs: probesConfig.timeoutMs,
        completedRuns: scheduler.completedRuns,
        results: Object.fromEntries(
          scheduler
            .results()
            .map((result) => [result.database ? `${result.probe}:${result.database}` : result.probe, result]),
        ),
        ...(census ? { census: census.last ?? null } : {}),
        poolSizing: sizer.last,
      };
    },
  };
}

function defaultCounterReader(config: SidecarConfig): () => Promise<number | undefined> {
  const endpoint = boltEndpoint(requireNeo4jUri(config), config.neo4j.tlsCaFile);
  const options = { userAgent: `neo4j-pool-sidecar/${SIDECAR_VERSION}`, timeoutMs: config.probes.timeoutMs };
  return () => readConnectionCounter(endpoint, options);
}

/** Registered in src/components.ts: the probes run unless `probes.enabled` is false. */
export const probesComponentFactory: ComponentFactory = (context) =>
  context.config.probes.enabled
    ? createProbesComponent({
        config: context.config,
        driver: context.driver,
        ownPool: context.ownPool,
        credentials: context.credentials,
        driverLog: context.driverLog,
        recorder: context.recorder,
        logger: context.logger,
      })
    : undefined;
