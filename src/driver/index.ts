/**
 * neo4j-driver as the sidecar uses it: its own driver built from the config, the gate every login of
 * the sidecar goes through (credentials.ts), and the one module that
 * reads the driver's internals (the library half imports `./internals.ts` directly, so it does not
 * load the config code).
 */

export {
  CredentialsGate,
  type CredentialsGateOptions,
  type CredentialsObserver,
  CredentialsRejectedError,
  type CredentialsState,
  type CredentialsStatus,
  isCredentialsRejected,
  REJECTION_REASONS,
  type RejectionReason,
} from './credentials.ts';
export { DriverLog, type DriverLogOptions, type Neo4jReachability, withoutStack } from './driver-log.ts';
export {
  type AcquireRequest,
  type ConnectionProviderLike,
  type FindPoolResult,
  type FindProviderResult,
  findConnectionProvider,
  findPool,
  type PoolInternals,
  type ProvidedConnection,
} from './internals.ts';
export { createSidecarDriver } from './sidecar-driver.ts';
