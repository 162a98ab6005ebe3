export { ConfigError, type ConfigIssue, type LoadConfigOptions, loadConfig, maskConfig } from './load.ts';
export { configSchema, type SidecarConfig, type SidecarConfigInput } from './schema.ts';
