/**
 * The proxy on the wire: exact bytes from a raw Bolt client, against the real Neo4j for handshakes,
 * routing and back-pressure, and against a scripted fake upstream where the test must control what
 * the server sends (odd chunking, split routing tables, HTTP, no version). Bad input of every kind
 * closes only its own connection, is counted, and the proxy keeps serving.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import neo4j, { type Driver } from 'neo4j-driver';
import neo4j5 from 'neo4j-driver-5';
import { freePort } from '../../scripts/neo4j/local-neo4j.ts';
import { BoltSignature, chunkMessage, type PackStreamValue } from '../../src/proxy/bolt/index.ts';
import { CONNECTION_LIMIT_CODE, UPSTREAM_UNAVAILABLE_CODE } from '../../src/proxy/index.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import {
  connectBolt58,
  expectOneValue,
  handshakeOffers,
  hello,
  loggedInBolt58,
  map,
  message,
  RawBoltClient,
  runAndPull,
} from '../support/raw-bolt.ts';
import { eventually, hostPort, startTestProxy, type TestProxy } from './support.ts';

const quiet = { logging: { level: 'error' as const, logger: () => {} } };
const RAW_AGENT = 'raw-bolt-test/1.0';

let server: TestNeo4j;
let shared: TestProxy;

before(async () => {
  server = await sharedNeo4j();
  shared = await startTestProxy(server.uri, { handshakeTimeoutMs: 3000 });
});
after(async () => {
  await shared?.stop();
  await releaseSharedNeo4j();
});

function driverFor(uri: string, password = server.password, options: Record<string, unknown> = {}): Driver {
  return neo4j.driver(uri, neo4j.auth.basic(server.username, password), { ...quiet, ...options });
}

/** Handshake at Bolt 5.8 through the manifest, then HELLO and LOGON in the same segment as the choice. */
function loggedInRawClient(address: string): Promise<RawBoltClient> {
  return loggedInBolt58(address, { userAgent: RAW_AGENT, username: server.username, password: server.password });
}

function metadata(received: { fields: PackStreamValue[] }): Map<string, PackStreamValue> {
  const value = received.fields[0];
  assert.ok(value instanceof Map, 'a metadata map');
  return value;
}

describe('handshakes relayed to a real Neo4j', () => {
  it('a classic four-slot offer with a 4.3-style range, sent byte by byte, agrees on Bolt 4.4', async () => {
    const before = await shared.metric('neo4j_proxy_bolt_versions_total', { version: '4.4' });
    const client = await RawBoltClient.connect(shared.proxy.address);
    // 4.4 down to 4.2 in one slot, then 3.0: the server picks the highest it speaks.
    await client.writeByteByByte(handshakeOffers([2, 4, 4], [0, 0, 3]));
    assert.deepEqual([...(await client.readBytes(4))], [0, 0, 4, 4]);
    client.startMessages();
    client.write(
      message(
        BoltSignature.HELLO,
        map({ user_agent: RAW_AGENT, scheme: 'basic', principal: server.username, credentials: server.password }),
      ),
    );
    const hello = await client.readMessage();
    assert.equal(hello.signature, BoltSignature.SUCCESS);
    assert.match(String(metadata(hello).get('server')), /^Neo4j\//);
    client.write(runAndPull('UNWIND range(1, 3) AS x RETURN x'));
    const replies = [];
    for (let i = 0; i < 5; i++) replies.push(await client.readMessage());
    assert.deepEqual(
      replies.map((reply) => reply.signature),
      [BoltSignature.SUCCESS, BoltSignature.RECORD, BoltSignature.RECORD, BoltSignature.RECORD, BoltSignature.SUCCESS],
    );
    client.write(message(BoltSignature.GOODBYE));
    await client.waitForClose();
    await eventually(async () => {
      assert.equal(await shared.metric('neo4j_proxy_bolt_versions_total', { version: '4.4' }), before + 1);
    });
  });

  it('the manifest v1 handshake, with the client choice, HELLO and LOGON in one segment, agrees on Bolt 5.8', async () => {
    const before = await shared.metric('neo4j_proxy_bolt_versions_total', { version: '5.8' });
    const queriesBefore = await shared.metric('neo4j_query_duration_seconds_count', { source: 'proxy' });
    const client = await loggedInRawClient(shared.proxy.address);
    client.write(runAndPull('RETURN 42 AS answer'));
    await expectOneValue(client, 42);
    client.close();
    await eventually(async () => {
      assert.equal(await shared.metric('neo4j_proxy_bolt_versions_total', { version: '5.8' }), before + 1);
      assert.equal(await shared.metric('neo4j_query_duration_seconds_count', { source: 'proxy' }), queriesBefore + 1);
    });
  });

  it('the manifest handshake sent byte by byte in both handshake steps', async () => {
    const client = await connectBolt58(shared.proxy.address, [hello(RAW_AGENT)], { byteByByte: true });
    assert.equal((await client.readMessage()).signature, BoltSignature.SUCCESS);
    client.close();
  });
});

describe('routing tables', () => {
  it('rewrites every address of a ROUTE reply to the advertised address', async () => {
    const before = await shared.metric('neo4j_proxy_routing_tables_rewritten_total', { via: 'ROUTE' });
    const client = await loggedInRawClient(shared.proxy.address);
    client.write(message(BoltSignature.ROUTE, map({ address: shared.proxy.address }), [], map({ db: 'neo4j' })));
    const reply = await client.readMessage();
    assert.equal(reply.signature, BoltSignature.SUCCESS);
    const table = metadata(reply).get('rt') as Map<string, PackStreamValue>;
    const servers = table.get('servers') as Map<string, PackStreamValue>[];
    assert.deepEqual(servers.map((entry) => entry.get('role')).sort(), ['READ', 'ROUTE', 'WRITE']);
    for (const entry of servers) assert.deepEqual(entry.get('addresses'), [shared.proxy.advertisedAddress]);
    assert.equal(table.get('db'), 'neo4j');
    client.close();
    assert.equal(await shared.metric('neo4j_proxy_routing_tables_rewritten_total', { via: 'ROUTE' }), before + 1);
  });

  it('rewrites the records of the routing procedure that Bolt 3 to 4.2 clients call', async () => {
    const driver = driverFor(shared.boltUri);
    try {
      const { records } = await driver.executeQuery("CALL dbms.routing.getRoutingTable({}, 'neo4j')");
      const servers = records[0]?.get('servers') as { addresses: string[]; role: string }[];
      assert.equal(servers.length, 3);
      for (const entry of servers) assert.deepEqual(entry.addresses, [shared.proxy.advertisedAddress]);
    } finally {
      await driver.close();
    }
    assert.ok((await shared.metric('neo4j_proxy_routing_tables_rewritten_total', { via: 'procedure' })) >= 1);
  });

  it('keeps neo4j:// drivers on the proxy: every later connection goes to the advertised address', async () => {
    for (const module of [neo4j, neo4j5 as unknown as typeof neo4j]) {
      const driver = module.driver(shared.routingUri, module.auth.basic(server.username, server.password), quiet);
      try {
        const read = await driver.executeQuery('RETURN 1', {}, { routing: module.routing.READ });
        const write = await driver.executeQuery('RETURN 1', {}, { routing: module.routing.WRITE });
        assert.equal(read.summary.server.address, shared.proxy.advertisedAddress);
        assert.equal(write.summary.server.address, shared.proxy.advertisedAddress);
      } finally {
        await driver.close();
      }
    }
  });
});

describe('back-pressure', () => {
  it('stops reading from Neo4j while the client does not read, and delivers every byte once it does', async () => {
    const rows = 4000;
    const payload = 'p'.repeat(5000);
    const client = await loggedInRawClient(shared.proxy.address);
    client.write(
      message(
        BoltSignature.RUN,
        'UNWIND range(1, $rows) AS i RETURN i, $payload AS p',
        map({ rows, payload }),
        map({}),
      ),
    );
    assert.equal((await client.readMessage()).signature, BoltSignature.SUCCESS);
    client.socket.pause();
    client.write(message(BoltSignature.PULL, map({ n: -1 })));
    // ~20 MB are on their way; the proxy must hold only about one read of them.
    let maxBuffered = 0;
    for (let sample = 0; sample < 40; sample++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      maxBuffered = Math.max(maxBuffered, shared.proxy.status().bufferedBytes);
    }
    assert.ok(maxBuffered < 1024 * 1024, `the proxy buffered ${maxBuffered} bytes`);
    client.socket.resume();
    const hash = createHash('sha256');
    for (let row = 1; row <= rows; row++) {
      const record = await client.readMessage();
      assert.equal(record.signature, BoltSignature.RECORD);
      const [i, p] = record.fields[0] as [number, string];
      assert.equal(i, row);
      hash.update(p);
    }
    assert.equal(hash.digest('hex'), createHash('sha256').update(payload.repeat(rows)).digest('hex'));
    assert.equal((await client.readMessage()).signature, BoltSignature.SUCCESS);
    client.close();
  });
});

describe('bad input closes that connection only, counted and logged', () => {
  async function rejectedDelta(reason: string, run: () => Promise<void>, proxy = shared): Promise<number> {
    const before = await proxy.metric('neo4j_proxy_connections_rejected_total', { reason });
    await run();
    let delta = 0;
    await eventually(async () => {
      delta = (await proxy.metric('neo4j_proxy_connections_rejected_total', { reason })) - before;
      assert.ok(delta > 0, `no ${reason} counted`);
    });
    return delta;
  }

  async function sendAndExpectClose(bytes: Buffer, address = shared.proxy.address): Promise<void> {
    const client = await RawBoltClient.connect(address);
    client.write(bytes);
    await client.waitForClose();
  }

  it('HTTP, TLS or garbage instead of the Bolt magic', async () => {
    const tlsClientHello = Buffer.from('160301020001', 'hex');
    const inputs = [
      Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'),
      Buffer.concat([tlsClientHello, Buffer.alloc(40)]),
      Buffer.from('this is not bolt at all, not even close'),
    ];
    const delta = await rejectedDelta('bad_handshake', async () => {
      for (const input of inputs) await sendAndExpectClose(input);
    });
    assert.equal(delta, inputs.length);
    assert.ok(shared.logs.some((line) => line.includes('"reason":"bad_handshake"') && line.includes('HTTP')));
  });

  it('a chunk that does not hold a message', async () => {
    await rejectedDelta('framing', async () => {
      const client = await loggedInRawClient(shared.proxy.address);
      client.write(Buffer.from([0x00, 0x03, 0x01, 0x02, 0x03, 0x00, 0x00]));
      await client.waitForClose();
    });
  });

  it('a stream that ends inside a chunk (truncated)', async () => {
    // A proxy of its own: problem logs are rate-limited per reason, and the test above logged one.
    const fresh = await startTestProxy(server.uri);
    try {
      await rejectedDelta(
        'framing',
        async () => {
          const client = await loggedInRawClient(fresh.proxy.address);
          client.write(Buffer.from([0x00, 0x10, 0xb1, 0x10]));
          client.socket.end();
          await client.waitForClose();
        },
        fresh,
      );
      assert.ok(fresh.logs.some((line) => line.includes('"reason":"framing"') && line.includes('truncated chunk')));
    } finally {
      await fresh.stop();
    }
  });

  it('metadata that is not PackStream', async () => {
    // BEGIN {db: <reserved marker 0xC4>}: the tracker cannot read it, so the proxy will not forward it.
    const begin = chunkMessage(Buffer.from([0xb1, 0x11, 0xa1, 0x82, 0x64, 0x62, 0xc4]));
    await rejectedDelta('undecodable_message', async () => {
      const client = await loggedInRawClient(shared.proxy.address);
      client.write(begin);
      await client.waitForClose();
    });
  });

  it('a message over maxMessageBytes, except a RUN, whose parameters may be large', async () => {
    const small = await startTestProxy(server.uri, { maxMessageBytes: 1024 });
    try {
      const client = await loggedInRawClient(small.proxy.address);
      const bigParameter = 'x'.repeat(100_000);
      client.write(runAndPull('RETURN size($big) AS size', { big: bigParameter }));
      await expectOneValue(client, 100_000);
      await rejectedDelta(
        'message_too_large',
        async () => {
          client.write(
            message(BoltSignature.BEGIN, map({ db: 'neo4j', tx_metadata: map({ note: 'y'.repeat(2000) }) })),
          );
          await client.waitForClose();
        },
        small,
      );
    } finally {
      await small.stop();
    }
  });

  it('a client that stalls in the handshake is timed out', async () => {
    const impatient = await startTestProxy(server.uri, { handshakeTimeoutMs: 300 });
    try {
      const delta = await rejectedDelta(
        'handshake_timeout',
        async () => {
          const silent = await RawBoltClient.connect(impatient.proxy.address);
          const stalled = await RawBoltClient.connect(impatient.proxy.address);
          stalled.write(Buffer.from([0x60, 0x60, 0xb0, 0x17, 0x00]));
          await Promise.all([silent.waitForClose(3000), stalled.waitForClose(3000)]);
        },
        impatient,
      );
      assert.equal(delta, 2);
      await eventually(() => assert.equal(impatient.proxy.activeConnections, 0));
    } finally {
      await impatient.stop();
    }
  });

  it('a storm of random bytes leaves the proxy serving', async () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const clients = await Promise.all(
      Array.from({ length: 100 }, async (_, index) => {
        const client = await RawBoltClient.connect(shared.proxy.address);
        const noise = Buffer.from(
          Array.from({ length: 1 + Math.floor(random() * 200) }, () => Math.floor(random() * 256)),
        );
        // Half start like Bolt, so the garbage reaches the handshake offers, the manifest and the dechunker.
        const prefix = index % 2 === 0 ? handshakeOffers([8, 8, 5]) : Buffer.alloc(0);
        client.write(Buffer.concat([prefix, noise]));
        return client;
      }),
    );
    for (const client of clients) client.socket.resume();
    await Promise.all(clients.map((client) => client.waitForClose(1500).catch(() => client.close())));
    await eventually(() => assert.equal(shared.proxy.activeConnections, 0));
    const driver = driverFor(shared.boltUri);
    try {
      const { records } = await driver.executeQuery('RETURN 1 AS one');
      assert.equal(records[0]?.get('one').toNumber(), 1);
    } finally {
      await driver.close();
    }
  });
});

describe('refusals the client can read', () => {
  it('past maxConnections, a Bolt FAILURE that names the limit, for both driver lines', async () => {
    const limited = await startTestProxy(server.uri, { maxConnections: 2 });
    const holders = await Promise.all([
      loggedInRawClient(limited.proxy.address),
      loggedInRawClient(limited.proxy.address),
    ]);
    try {
      for (const module of [neo4j, neo4j5 as unknown as typeof neo4j]) {
        const driver = module.driver(limited.boltUri, module.auth.basic(server.username, server.password), {
          ...quiet,
          maxTransactionRetryTime: 0,
        });
        try {
          await assert.rejects(driver.executeQuery('RETURN 1'), (error: Error & { code?: string }) => {
            assert.match(error.message, /at its limit of 2 client connections/);
            assert.equal(error.code, CONNECTION_LIMIT_CODE);
            return true;
          });
        } finally {
          await driver.close();
        }
      }
      assert.ok((await limited.metric('neo4j_proxy_connections_rejected_total', { reason: 'limit' })) >= 2);
      assert.equal(limited.proxy.status().refusedConnections >= 2, true);
      holders[0]?.close();
      await eventually(() => assert.equal(limited.proxy.activeConnections, 1));
      const driver = driverFor(limited.boltUri);
      try {
        await driver.executeQuery('RETURN 1');
      } finally {
        await driver.close();
      }
    } finally {
      for (const holder of holders) holder.close();
      await limited.stop();
    }
  });

  it('an unreachable Neo4j, as a Bolt FAILURE that says so', async () => {
    const closedPort = await freePort();
    const orphan = await startTestProxy(`bolt://127.0.0.1:${closedPort}`);
    const driver = driverFor(orphan.boltUri, server.password, { maxTransactionRetryTime: 0 });
    try {
      await assert.rejects(driver.executeQuery('RETURN 1'), (error: Error & { code?: string }) => {
        assert.match(error.message, new RegExp(`could not reach Neo4j at 127\\.0\\.0\\.1:${closedPort}`));
        assert.equal(error.code, UPSTREAM_UNAVAILABLE_CODE);
        return true;
      });
      assert.ok(
        (await orphan.metric('neo4j_proxy_connections_rejected_total', { reason: 'upstream_unavailable' })) >= 1,
      );
      assert.ok(orphan.logs.some((line) => line.includes('ECONNREFUSED')));
    } finally {
      await driver.close();
      await orphan.stop();
    }
  });
});

describe('stop()', () => {
  it('closes idle connections at once, lets an open transaction finish, then stops', async () => {
    const proxy = await startTestProxy(server.uri);
    const busy = driverFor(proxy.boltUri);
    const idle = driverFor(proxy.boltUri);
    try {
      await idle.executeQuery('RETURN 1');
      const session = busy.session();
      const tx = await session.beginTransaction();
      await tx.run('RETURN 1');
      assert.equal(proxy.proxy.activeConnections, 2);
      const stopped = proxy.proxy.stop(20_000);
      let stopDone = false;
      void stopped.then(() => {
        stopDone = true;
      });
      // At once: well inside the 20 s grace that would otherwise close it too.
      await eventually(() => assert.equal(proxy.proxy.activeConnections, 1), 10_000);
      const { records } = await tx.run('RETURN 2 AS two');
      assert.equal(records[0]?.get('two').toNumber(), 2);
      assert.equal(stopDone, false, 'stop() waits for the open transaction');
      await tx.commit();
      await session.close();
      await stopped;
      assert.equal(await proxy.metric('neo4j_proxy_client_connections_closed_total', { reason: 'shutdown' }), 2);
      await assert.rejects(
        new Promise((resolve, reject) => {
          const socket = net.connect(proxy.proxy.port, '127.0.0.1', () => resolve(socket));
          socket.once('error', reject);
        }),
        /ECONNREFUSED/,
      );
    } finally {
      await Promise.all([busy.close(), idle.close()]);
    }
  });

  it('closes what is still busy when the grace period is over', async () => {
    const proxy = await startTestProxy(server.uri);
    const driver = driverFor(proxy.boltUri);
    try {
      const session = driver.session();
      const tx = await session.beginTransaction();
      await tx.run('RETURN 1');
      await proxy.proxy.stop(200);
      await assert.rejects(tx.commit());
      await session.close().catch(() => {});
      assert.equal(proxy.proxy.activeConnections, 0);
    } finally {
      await driver.close();
    }
  });
});

describe('status()', () => {
  it('reports the listen address, open connections by client and the Bolt versions seen', async () => {
    const driver = driverFor(shared.boltUri);
    try {
      await driver.executeQuery('RETURN 1');
      const status = shared.proxy.status();
      assert.equal(status.listen, hostPort(shared.boltUri));
      assert.equal(status.upstream, server.uri);
      assert.ok((status.boltVersions['5.8'] ?? 0) >= 1);
      assert.ok((status.activeByUserAgent['neo4j-javascript/6'] ?? 0) >= 1);
      assert.ok(status.activeConnections >= 1);
    } finally {
      await driver.close();
    }
  });
});
