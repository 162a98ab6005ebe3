#!/usr/bin/env node
/**
 * neo4j-pool-sidecar [run] | check-config | rules | queries | pause | resume | reconnect | top | --help | --version
 *
 * Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad configuration (nothing was started).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';
import { ConfigError, loadConfig, maskConfig, requireNeo4jUri, type SidecarConfig } from './config/index.ts';
import {
  type CliIo,
  type ComponentFactory,
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  type ExtraCommand,
  SIDECAR_VERSION,
} from './contracts.ts';
import { createLogger } from './logger.ts';
import { startSidecar } from './server/index.ts';

const USAGE = `Usage: neo4j-pool-sidecar [command] [--config <file.yaml>]

Commands:
  run            start the sidecar (default)
  check-config   validate the configuration and print it with secrets masked
  rules          print the Prometheus alert rules rendered from the configured thresholds
  queries        print the query statistics of a running sidecar, heaviest first
                 [--url http://127.0.0.1:9464] [--sort total|mean|calls|errors] [--limit N]
  pause          pause the running sidecar's pool: hold new work, wait for in-flight
                 transactions and queries to end, report [--drain-timeout SECONDS] [--json]
                 (exit 3: paused, but work still ran when the drain timed out)
  resume         release what pause held [--json]
  reconnect      close every pooled Neo4j connection at its next return [--json]
  top            a live view of the running sidecar, refreshed every second
                 [--once] [--interval SECONDS] [--url http://127.0.0.1:9464]

Options:
  -c, --config <file>  YAML configuration file (environment variables override it)
  -h, --help           show this help
  -v, --version        print the version

Environment: NEO4J_URI, NEO4J_USERNAME, NEO4J_PASSWORD, NEO4J_PASSWORD_FILE, and
SIDECAR__<SECTION>__<OPTION> for any other option (see docs/configuration.md).
`;

interface ParsedArgs {
  command: string;
  configFile?: string;
  help: boolean;
  version: boolean;
  /** Options after a command that takes its own (see ExtraCommand.takesArguments). */
  rest: string[];
}

const COMMANDS = new Set(['run', 'check-config', 'rules']);

function parseArgs(
  argv: readonly string[],
  extraCommands: Readonly<Record<string, ExtraCommand>> = {},
): ParsedArgs | string {
  const parsed: ParsedArgs = { command: 'run', help: false, version: false, rest: [] };
  let commandSeen = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') parsed.help = true;
    else if (arg === '-v' || arg === '--version') parsed.version = true;
    else if (arg === '-c' || arg === '--config') {
      const value = argv[++i];
      if (!value) return `${arg} needs a file path`;
      parsed.configFile = value;
    } else if (arg.startsWith('--config=')) parsed.configFile = arg.slice('--config='.length);
    else if (commandSeen && extraCommands[parsed.command]?.takesArguments === true) parsed.rest.push(arg);
    else if (arg.startsWith('-')) return `unknown option ${arg}`;
    else if (!commandSeen && (COMMANDS.has(arg) || Object.hasOwn(extraCommands, arg))) {
      parsed.command = arg;
      commandSeen = true;
    } else return `unknown command ${arg}`;
  }
  return parsed;
}

export interface MainOptions {
  /** Components started by `run` (proxy, probes). */
  components?: readonly ComponentFactory[];
  commands?: Readonly<Record<string, ExtraCommand>>;
  /** Resolves when the process should stop (signals); tests pass their own. */
  stopSignal?: Promise<string>;
}

export async function main(argv: readonly string[], io: CliIo, options: MainOptions = {}): Promise<number> {
  const args = parseArgs(argv, options.commands);
  if (typeof args === 'string') {
    io.stderr(`neo4j-pool-sidecar: ${args}\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  if (args.help) {
    io.stdout(USAGE);
    return EXIT_OK;
  }
  if (args.version) {
    io.stdout(`${SIDECAR_VERSION}\n`);
    return EXIT_OK;
  }

  let config: SidecarConfig;
  try {
    config = loadConfig({ ...(args.configFile ? { file: args.configFile } : {}), env: io.env });
    if (args.command === 'run') requireNeo4jUri(config);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr(`neo4j-pool-sidecar: ${error.message}\n`);
      return EXIT_USAGE;
    }
    throw error;
  }

  if (args.command === 'check-config') {
    io.stdout(`# configuration is valid; secrets masked\n${toYaml(maskConfig(config))}`);
    return EXIT_OK;
  }
  const extra = options.commands?.[args.command];
  if (extra) return extra(config, io, args.rest);
  if (args.command !== 'run') {
    io.stderr(`neo4j-pool-sidecar: the ${args.command} command is not available in this build\n`);
    return EXIT_USAGE;
  }

  const logger = createLogger({ level: config.log.level, pretty: config.log.pretty });
  let sidecar: Awaited<ReturnType<typeof startSidecar>>;
  try {
    sidecar = await startSidecar(config, { logger, components: options.components ?? [] });
  } catch (error) {
    logger.fatal({ err: error }, 'could not start');
    return EXIT_FAILURE;
  }
  const signal = await (options.stopSignal ?? waitForSignal());
  logger.info({ signal }, 'shutting down');
  // A second signal during shutdown means the operator wants out now.
  const forceExit = () => process.exit(EXIT_FAILURE);
  process.once('SIGINT', forceExit);
  process.once('SIGTERM', forceExit);
  await sidecar.stop();
  process.removeListener('SIGINT', forceExit);
  process.removeListener('SIGTERM', forceExit);
  logger.flush?.();
  return EXIT_OK;
}

function waitForSignal(): Promise<string> {
  return new Promise((resolve) => {
    const onSignal = (signal: string) => {
      process.removeListener('SIGTERM', onSignal);
      process.removeListener('SIGINT', onSignal);
      resolve(signal);
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
}

/** True when this file is the program being run, not a module imported by tests. */
function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const { defaultComponents, defaultCommands } = await import('./components.ts');
  const code = await main(
    process.argv.slice(2),
    { stdout: (text) => process.stdout.write(text), stderr: (text) => process.stderr.write(text), env: process.env },
    { components: defaultComponents, commands: defaultCommands },
  );
  process.exitCode = code;
}
