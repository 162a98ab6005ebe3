/**
 * `npm run neo4j`: a local Neo4j Community server for development, the same one the tests and
 * `npm start` use (jars from Maven Central, loopback only). Prints where it listens and the
 * environment to point the sidecar at it, then runs until Ctrl-C, which stops and deletes it.
 *
 *   npm run neo4j -- [--port 7688] [--version 5.26.30] [--password secret]
 */
import { parseArgs } from 'node:util';
import { DEFAULT_NEO4J_VERSION, DEFAULT_TEST_PASSWORD, startLocalNeo4j } from './local-neo4j.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    version: { type: 'string', default: DEFAULT_NEO4J_VERSION },
    password: { type: 'string', default: DEFAULT_TEST_PASSWORD },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`--port must be a port number (0 picks a free one), got ${values.port}`);
  process.exit(2);
}

const server = await startLocalNeo4j({
  version: values.version,
  boltPort: port,
  password: values.password,
  name: 'dev',
  log: (line) => console.error(`[neo4j] ${line}`),
});
console.log(`Neo4j ${server.version} listening on ${server.uri}`);
console.log(`NEO4J_URI=${server.uri} NEO4J_USERNAME=${server.username} NEO4J_PASSWORD=${server.password}`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await server.destroy();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
