/**
 * The cluster scenarios of every client (JavaScript in-process; Python, Java and Go through
 * scripts/clients) against the run's shared Neo4j, directly: one member, so its marker node must serve
 * every transaction, and the counts, acknowledged ids and failures each client reports must agree with
 * what Neo4j holds. The cluster tests (test/proxy/*cluster*) rely on these reports through the proxy.
 * Small loads only: this checks the clients, not the spread.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import neo4j from 'neo4j-driver';
import { freePort } from '../../scripts/neo4j/local-neo4j.ts';
import { type ClusterClient, defaultClusterClients, expectClusterLoad } from '../proxy/cluster-client.ts';
import type { ScenarioConnection } from '../proxy/js-client.ts';
import { releaseSharedNeo4j, sharedNeo4j } from '../support/neo4j.ts';

type Neo4jDriver = ReturnType<typeof neo4j.driver>;

/** This file's member name and write-id prefix, so concurrent runs on the shared server stay apart. */
const run = randomUUID().slice(0, 8);
const member = `direct-${run}`;

/** The ClusterWrite ids Neo4j holds under a prefix, one entry per node. */
async function writtenIds(driver: Neo4jDriver, prefix: string): Promise<string[]> {
  const { records } = await driver.executeQuery(
    'MATCH (w:ClusterWrite) WHERE w.id STARTS WITH $prefix RETURN w.id AS id ORDER BY id',
    { prefix: `${prefix}-` },
  );
  return records.map((record) => record.get('id') as string);
}

describe('cluster scenarios of every client, against one Neo4j', { timeout: 10 * 60_000 }, () => {
  let admin: Neo4jDriver;
  let connection: ScenarioConnection;
  const clients = defaultClusterClients();
  const prefixes: string[] = [];
  const prefixFor = (client: ClusterClient, scenario: string) => {
    const prefix = `${run}-${client.name.split(' ')[0]}-${scenario}`;
    prefixes.push(prefix);
    return prefix;
  };

  before(async () => {
    const [server] = await Promise.all([sharedNeo4j(), ...clients.map((client) => client.prepare())]);
    admin = neo4j.driver(server.uri, neo4j.auth.basic(server.username, server.password));
    await admin.executeQuery('CREATE (:ClusterMember {name: $member})', { member });
    // neo4j://, as the cluster tests connect: the driver's routing against a single server.
    connection = { uri: server.uri.replace(/^bolt:/, 'neo4j:'), user: server.username, password: server.password };
  });

  after(async () => {
    if (admin) {
      await admin.executeQuery('MATCH (m:ClusterMember {name: $member}) DELETE m', { member });
      for (const prefix of prefixes) {
        await admin.executeQuery('MATCH (w:ClusterWrite) WHERE w.id STARTS WITH $prefix DELETE w', {
          prefix: `${prefix}-`,
        });
      }
      await admin.close();
    }
    await releaseSharedNeo4j();
  });

  for (const client of clients) {
    describe(client.name, () => {
      test('cluster-spread: every read and write served by the marked member, each write once', async () => {
        const idPrefix = prefixFor(client, 'spread');
        const load = expectClusterLoad(await client.spread(connection, { reads: 20, writes: 5, idPrefix }));
        assert.deepEqual(load.reads, { transactions: 20, committed: 20, byMember: { [member]: 20 } });
        assert.deepEqual(load.writes, { transactions: 5, committed: 5, byMember: { [member]: 5 } });
        const expectedIds = [0, 1, 2, 3, 4].map((n) => `${idPrefix}-${n}`);
        assert.deepEqual(load.acknowledgedWriteIds, expectedIds);
        assert.deepEqual(load.failures, []);
        assert.equal(load.attempts, 25);
        assert.equal(load.retried, 0);
        assert.deepEqual(await writtenIds(admin, idPrefix), expectedIds);
      });

      test('cluster-write-loop with 2 workers runs until stopped; Neo4j holds exactly the acknowledged writes', async () => {
        const idPrefix = prefixFor(client, 'write-loop');
        const loop = await client.startLoop('cluster-write-loop', connection, { concurrency: 2, idPrefix });
        await loop.whenCompleted(10);
        const load = expectClusterLoad(await loop.stop());
        assert.ok(load.writes.committed >= 10, JSON.stringify(load.writes));
        assert.deepEqual(load.writes.byMember, { [member]: load.writes.committed });
        assert.equal(load.reads.transactions, 0);
        assert.deepEqual(load.failures, []);
        assert.deepEqual(await writtenIds(admin, idPrefix), [...load.acknowledgedWriteIds].sort());
      });

      test('cluster-read-loop ends by itself at durationMs', async () => {
        const loop = await client.startLoop('cluster-read-loop', connection, { durationMs: 500 });
        const load = expectClusterLoad(await loop.report);
        assert.equal(load.writes.transactions, 0);
        assert.deepEqual(load.failures, []);
        assert.deepEqual(Object.keys(load.reads.byMember), load.reads.committed > 0 ? [member] : []);
        // Past its end, a count it never reached can no longer come.
        await assert.rejects(loop.whenCompleted(load.reads.transactions + 1), /ended after/);
      });

      test('cluster-spread reports each transaction that found no server, after its retry budget', async () => {
        const closed = `neo4j://127.0.0.1:${await freePort()}`;
        const idPrefix = prefixFor(client, 'refused');
        const report = await client.spread(
          { ...connection, uri: closed },
          { reads: 1, writes: 1, idPrefix, maxRetryMs: 300 },
        );
        const load = expectClusterLoad(report);
        assert.deepEqual(load.reads, { transactions: 1, committed: 0, byMember: {} });
        assert.deepEqual(load.writes, { transactions: 1, committed: 0, byMember: {} });
        assert.deepEqual(
          load.failures.map(({ access, id, code, retryable }) => ({ access, id, code, retryable })),
          [
            { access: 'read', id: null, code: null, retryable: true },
            { access: 'write', id: `${idPrefix}-0`, code: null, retryable: true },
          ],
        );
        assert.equal(load.attempts, 0, 'no transaction function runs without a server');
        assert.equal(report.server, null);
      });
    });
  }
});
