/**
 * neo4j-driver as the sidecar uses it: its own driver built from the config, and the one module that
 * reads the driver's internals (the library half imports `./internals.ts` directly, so it does not
 * load the config code).
 */
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
