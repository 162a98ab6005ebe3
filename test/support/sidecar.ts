/**
 * A whole sidecar in the test process, configured the way the CLI configures one (from environment
 * variables), against a real Neo4j: HTTP and proxy on free loopback ports, the program's default
 * components, a silent logger unless the test wants the log.
 */
import { defaultComponents } from '../../src/components.ts';
import { loadConfig } from '../../src/config/index.ts';
import type { ComponentFactory } from '../../src/contracts.ts';
import { createLogger, type Logger } from '../../src/logger.ts';
import { type RunningSidecar, startSidecar } from '../../src/server/index.ts';

export interface TestSidecarOptions {
  neo4j: { uri: string; password: string };
  /** `SIDECAR__…` settings on top of the defaults (free ports); they win over the defaults. */
  env?: Record<string, string>;
  logger?: Logger;
  /** Default: every component the CLI runs. */
  components?: readonly ComponentFactory[];
}

export async function startTestSidecar(options: TestSidecarOptions): Promise<RunningSidecar> {
  const config = loadConfig({
    env: {
      NEO4J_URI: options.neo4j.uri,
      NEO4J_PASSWORD: options.neo4j.password,
      SIDECAR__HTTP__PORT: '0',
      SIDECAR__PROXY__PORT: '0',
      ...options.env,
    },
  });
  return startSidecar(config, {
    logger: options.logger ?? createLogger({ level: 'silent', pretty: 'never' }),
    components: options.components ?? defaultComponents,
  });
}
