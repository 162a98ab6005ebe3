/**
 * The shared real Neo4j of a test run. `npm test` starts one server for the whole run and passes
 * it in NEO4J_TEST_URI / NEO4J_TEST_PASSWORD; a test file run on its own starts its own.
 */
import neo4j, { type Config, type Driver } from 'neo4j-driver';
import { type LocalNeo4j, startLocalNeo4j } from '../../scripts/neo4j/local-neo4j.ts';

export interface TestNeo4j {
  uri: string;
  username: string;
  password: string;
}

let shared: Promise<TestNeo4j> | undefined;
let owned: LocalNeo4j | undefined;

export function sharedNeo4j(): Promise<TestNeo4j> {
  shared ??= (async () => {
    const uri = process.env.NEO4J_TEST_URI;
    const password = process.env.NEO4J_TEST_PASSWORD;
    if (uri && password) return { uri, username: 'neo4j', password };
    owned = await startLocalNeo4j({ name: 'test-file' });
    process.once('beforeExit', () => void owned?.destroy());
    return { uri: owned.uri, username: owned.username, password: owned.password };
  })();
  return shared;
}

/** Stops the server this file started (no-op when the run's shared server is used). */
export async function releaseSharedNeo4j(): Promise<void> {
  await owned?.destroy();
  owned = undefined;
  shared = undefined;
}

/** The shared server and a driver straight to it, beside the proxy under test (close with closeSharedNeo4j). */
export async function openSharedNeo4j(config: Config = {}): Promise<{ server: TestNeo4j; driver: Driver }> {
  const server = await sharedNeo4j();
  return { server, driver: neo4j.driver(server.uri, neo4j.auth.basic(server.username, server.password), config) };
}

/** Closes the direct driver, then the server if this file started its own. */
export async function closeSharedNeo4j(driver: Driver | undefined): Promise<void> {
  await driver?.close();
  await releaseSharedNeo4j();
}

/** A server of the test's own, for tests that stop or restart it. */
export function privateNeo4j(name: string): Promise<LocalNeo4j> {
  return startLocalNeo4j({ name });
}
