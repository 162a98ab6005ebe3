export {
  ConfigError,
  type ConfigIssue,
  type LoadConfigOptions,
  loadConfig,
  maskConfig,
  requireNeo4jUri,
} from './load.ts';
export { configSchema, type SidecarConfig, type SidecarConfigInput } from './schema.ts';
