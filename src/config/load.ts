/**
 * Configuration sources, lowest precedence first: schema defaults, the YAML file (`--config`),
 * environment variables. Neo4j's own variable names (NEO4J_URI, NEO4J_USERNAME, NEO4J_PASSWORD,
 * NEO4J_PASSWORD_FILE) work as users expect; any other option is `SIDECAR__SECTION__OPTION`,
 * e.g. `SIDECAR__STATSD__ENABLED=true` or `SIDECAR__HTTP__PORT=9000`.
 */

import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { readAdminToken } from './admin-token.ts';
import { configSchema, type SidecarConfig } from './schema.ts';

export interface ConfigIssue {
  /** Dotted path of the option, e.g. `statsd.port`. */
  path: string;
  message: string;
  /** Where the bad value came from: the file, or the environment variable. */
  source?: string;
}

export class ConfigError extends Error {
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(
      `invalid configuration:\n${issues
        .map(
          (issue) => `  - ${issue.path || '(root)'}${issue.source ? ` (from ${issue.source})` : ''}: ${issue.message}`,
        )
        .join('\n')}`,
    );
    this.name = 'ConfigError';
  }
}

/**
 * neo4j.uri is optional in the schema (check-config and rules run without one) but everything that
 * talks to Neo4j needs it: they all ask here, so it fails one way, as bad configuration (exit 2).
 */
export function requireNeo4jUri(config: { neo4j: { uri?: string | undefined } }): string {
  const uri = config.neo4j.uri;
  if (!uri) throw new ConfigError([{ path: 'neo4j.uri', message: 'required to run: set NEO4J_URI or neo4j.uri' }]);
  return uri;
}

export interface LoadConfigOptions {
  /** Path of the YAML file, if any. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  readFile?: (path: string) => string;
}

const WELL_KNOWN_ENV: Record<string, string[]> = {
  NEO4J_URI: ['neo4j', 'uri'],
  NEO4J_USERNAME: ['neo4j', 'username'],
  NEO4J_PASSWORD: ['neo4j', 'password'],
  NEO4J_PASSWORD_FILE: ['neo4j', 'passwordFile'],
};
const ENV_PREFIX = 'SIDECAR__';

type Tree = Record<string, unknown>;

function camelCase(screaming: string): string {
  return screaming.toLowerCase().replace(/_([a-z0-9])/g, (_, letter: string) => letter.toUpperCase());
}

/** Env values are strings; YAML scalar rules turn `true`, `9000`, `[a, b]` into what the schema expects. */
function parseEnvValue(raw: string): unknown {
  try {
    return parseYaml(raw) ?? raw;
  } catch {
    return raw;
  }
}

function setPath(tree: Tree, path: readonly string[], value: unknown): void {
  let node = tree;
  for (const segment of path.slice(0, -1)) {
    const child = node[segment];
    if (typeof child !== 'object' || child === null || Array.isArray(child)) node[segment] = {};
    node = node[segment] as Tree;
  }
  node[path[path.length - 1]!] = value;
}

function readYaml(file: string, readFile: (path: string) => string): Tree {
  let text: string;
  try {
    text = readFile(file);
  } catch (error) {
    throw new ConfigError([
      { path: '', message: `cannot read config file: ${(error as Error).message}`, source: file },
    ]);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    const where = error instanceof YAMLParseError && error.linePos ? ` at line ${error.linePos[0].line}` : '';
    throw new ConfigError([{ path: '', message: `not valid YAML${where}: ${(error as Error).message}`, source: file }]);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError([{ path: '', message: 'the config file must hold a mapping of sections', source: file }]);
  }
  return parsed as Tree;
}

function issuePath(path: readonly PropertyKey[]): string {
  return path.map(String).join('.');
}

/** Reads, merges and validates the configuration; throws ConfigError naming every bad field. */
export function loadConfig(options: LoadConfigOptions = {}): SidecarConfig {
  const env = options.env ?? process.env;
  const readFile = options.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
  const tree: Tree = options.file ? readYaml(options.file, readFile) : {};
  const sources = new Map<string, string>();
  if (options.file) sources.set('', options.file);

  for (const [name, path] of Object.entries(WELL_KNOWN_ENV)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    setPath(tree, path, value);
    sources.set(path.join('.'), `env ${name}`);
  }
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
    const path = name.slice(ENV_PREFIX.length).split('__').filter(Boolean).map(camelCase);
    if (path.length === 0) continue;
    setPath(tree, path, parseEnvValue(value));
    sources.set(path.join('.'), `env ${name}`);
  }

  const result = configSchema.safeParse(tree);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((issue) => describeIssue(issue, sources, options.file)));
  }
  return resolveSecrets(result.data, readFile, sources);
}

function describeIssue(issue: z.core.$ZodIssue, sources: Map<string, string>, file: string | undefined): ConfigIssue {
  let path = issuePath(issue.path);
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys;
    path = [path, keys[0]].filter(Boolean).join('.');
    message = `unknown option${keys.length > 1 ? `s ${keys.join(', ')}` : ''}`;
  }
  const source = sources.get(path) ?? file;
  return { path, message, ...(source ? { source } : {}) };
}

function resolveSecrets(config: SidecarConfig, readFile: (path: string) => string, sources: Map<string, string>) {
  checkAdminTokenFile(config, sources);
  const { password, passwordFile } = config.neo4j;
  if (password !== undefined && passwordFile !== undefined) {
    throw new ConfigError([
      {
        path: 'neo4j.passwordFile',
        message: 'set either neo4j.password or neo4j.passwordFile, not both',
        ...(sources.get('neo4j.passwordFile') ? { source: sources.get('neo4j.passwordFile') } : {}),
      },
    ]);
  }
  if (passwordFile === undefined) return config;
  let secret: string;
  try {
    secret = readFile(passwordFile).replace(/\r?\n$/, '');
  } catch (error) {
    throw new ConfigError([
      {
        path: 'neo4j.passwordFile',
        message: `cannot read the password file: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
        ...(sources.get('neo4j.passwordFile') ? { source: sources.get('neo4j.passwordFile') } : {}),
      },
    ]);
  }
  return { ...config, neo4j: { ...config.neo4j, password: secret } };
}

/** A configured admin token file must be usable before anything starts, or the endpoints it guards would be unreachable. */
function checkAdminTokenFile(config: SidecarConfig, sources: Map<string, string>): void {
  const path = config.http.adminTokenFile;
  if (path === undefined) return;
  try {
    readAdminToken(path);
  } catch (error) {
    throw new ConfigError([
      {
        path: 'http.adminTokenFile',
        message: (error as Error).message,
        ...(sources.get('http.adminTokenFile') ? { source: sources.get('http.adminTokenFile') } : {}),
      },
    ]);
  }
}

const MASK = '*****';

/** The configuration with every secret replaced, for logs, /status and `check-config`. */
export function maskConfig(config: SidecarConfig): SidecarConfig {
  const uri = config.neo4j.uri?.replace(/\/\/[^@/]*@/, `//${MASK}@`);
  return {
    ...config,
    neo4j: {
      ...config.neo4j,
      ...(uri !== undefined ? { uri } : {}),
      ...(config.neo4j.password !== undefined ? { password: MASK } : {}),
    },
  };
}
