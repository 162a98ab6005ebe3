export { AdminTokenError, AdminTokenFile, MIN_ADMIN_TOKEN_LENGTH, readAdminToken } from './admin-token.ts';
export {
  ConfigError,
  type ConfigIssue,
  type LoadConfigOptions,
  loadConfig,
  maskConfig,
  requireNeo4jUri,
} from './load.ts';
export { configSchema, type SidecarConfig, type SidecarConfigInput } from './schema.ts';
export { sidecarRequestHeaders, sidecarUrl } from './sidecar-endpoint.ts';
