/**
 * The metering Bolt proxy: workers point their NEO4J_URI at it instead of at Neo4j, and every
 * connection and query they make shows up in the sidecar's metrics. The sidecar registers
 * `proxyComponent`; `startBoltProxy` runs one on its own (tests, embedding).
 */
export { type BoltProxyComponent, isBoltProxyComponent, PROXY_COMPONENT_NAME, proxyComponent } from './component.ts';
export {
  BoltProxy,
  type BoltProxyOptions,
  type BoltProxyStatus,
  POOLING_DEFAULTS,
  type PoolingOptions,
  startBoltProxy,
} from './listener.ts';
export {
  CLIENT_STATES,
  type ClientState,
  type ClientsView,
  type ClientView,
  countByState,
  DEFAULT_DRAIN_TIMEOUT_SECONDS,
  MAX_DRAIN_TIMEOUT_SECONDS,
  type MemberPoolView,
  type PauseOptions,
  type PauseReport,
  type PoolKeyView,
  type PoolsView,
  type ProxyMaintenance,
  type ReconnectReport,
  type ResumeReport,
  type RunningWork,
  UPSTREAM_STATES,
  type UpstreamStateName,
} from './maintenance.ts';
export type { CloseReason, ProblemReason } from './metrics.ts';
export type { CheckoutResult, LoginOutcome, PoolingMode, UpstreamCloseReason } from './pool/pool.ts';
export {
  CONNECTION_LIMIT_CODE,
  IDLE_TRANSACTION_TIMEOUT_CODE,
  POOL_TIMEOUT_CODE,
  UPSTREAM_UNAVAILABLE_CODE,
} from './refusal.ts';
export { type UpstreamTarget, type UpstreamTls, upstreamFromUri } from './upstream.ts';
