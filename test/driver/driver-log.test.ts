/**
 * DriverLog on the texts neo4j-driver 6 logs while Neo4j is down (copied from a sidecar whose Neo4j was
 * stopped): one line when it becomes unreachable, one when it answers again, no stack anywhere.
 * test/probe/outage.test.ts checks the same against a real Neo4j stopped under a running sidecar.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { DriverLog, withoutStack } from '../../src/driver/index.ts';
import { createLogger } from '../../src/logger.ts';

const FATAL =
  'Connection [1][bolt-2] experienced a fatal error caused by Neo4jError: Connection was closed by server ({"gqlStatus":"50N42","code":"ServiceUnavailable","retriable":true})';
const REFUSED =
  'ConnectionHolder got an error while releasing the connection. Error Neo4jError: Failed to connect to server. Please ensure that your database is listening on the correct host and port. Caused by: connect ECONNREFUSED 127.0.0.1:43391. Stacktrace: Neo4jError: Failed to connect to server. Caused by: connect ECONNREFUSED 127.0.0.1:43391\n    at Neo4jError.GQLError [as constructor] (/node_modules/neo4j-driver-core/lib/error.js:126:28)\n    at NodeChannel._handleConnectionError (/node_modules/neo4j-driver-bolt-connection/lib/channel/node/node-channel.js:238:56)';
const OTHER =
  "Routing driver 0 will forget writer 127.0.0.1:7687 for database 'neo4j' because of an error Neo.ClientError.Cluster.NotALeader 'not a leader'. Stacktrace: Error\n    at x (y.js:1:1)";

function setUp() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) =>
    lines.push(
      ...chunk
        .toString()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    ),
  );
  let now = 1_000_000;
  const log = new DriverLog(createLogger({ level: 'debug', pretty: 'never', destination: stream }), { now: () => now });
  const settled = () => new Promise((resolve) => setImmediate(resolve));
  return { lines, log, settled, advance: (ms: number) => (now += ms) };
}

describe('DriverLog', () => {
  it('turns an outage into one line when Neo4j becomes unreachable and one when it answers again', async () => {
    const { lines, log, settled, advance } = setUp();
    log.log('warn', FATAL);
    log.log('warn', FATAL);
    for (let attempt = 0; attempt < 10; attempt++) log.log('warn', REFUSED);
    assert.equal(log.state, 'unreachable');
    advance(12_300);
    log.answered();
    log.answered();
    log.log('warn', REFUSED);
    await settled();
    assert.deepEqual(
      lines.map(({ level, component, msg, reason, suppressed, unreachableSeconds }) => ({
        level,
        component,
        msg,
        reason,
        suppressed,
        unreachableSeconds,
      })),
      [
        {
          level: 40,
          component: 'driver',
          msg: 'Neo4j unreachable; driver warnings about it are left out until it answers again',
          reason: 'connection closed by server',
          suppressed: undefined,
          unreachableSeconds: undefined,
        },
        {
          level: 30,
          component: 'driver',
          msg: 'Neo4j reachable again',
          reason: undefined,
          suppressed: 11,
          unreachableSeconds: 12.3,
        },
        {
          level: 40,
          component: 'driver',
          msg: 'Neo4j unreachable; driver warnings about it are left out until it answers again',
          reason: 'connect ECONNREFUSED 127.0.0.1:43391',
          suppressed: undefined,
          unreachableSeconds: undefined,
        },
      ],
    );
  });

  it('logs any other driver warning as it comes, without its stack', async () => {
    const { lines, log, settled } = setUp();
    log.log('warn', OTHER);
    log.log('warn', OTHER);
    await settled();
    assert.equal(lines.length, 2);
    assert.equal(log.state, 'reachable');
    assert.equal(
      lines[0]!.msg,
      "Routing driver 0 will forget writer 127.0.0.1:7687 for database 'neo4j' because of an error Neo.ClientError.Cluster.NotALeader 'not a leader'",
    );
  });

  it('cuts a stack however the driver appends it', () => {
    assert.equal(withoutStack('Something failed. Stacktrace: Error: x\n    at y'), 'Something failed');
    assert.equal(withoutStack('Error: x\n    at y (z.js:1:1)'), 'Error: x');
    assert.equal(withoutStack('no stack here'), 'no stack here');
  });
});
