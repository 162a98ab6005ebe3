/**
 * The Bolt proxy's own CPU per query, without the network: the reads of one real connection (neo4j-driver
 * 6.3 against Neo4j 5.26 over Bolt 5.8, captured at the proxy; the password replaced by x's) replayed
 * through a ProxiedConnection whose sockets are in memory. What it measures is everything the proxy does
 * per read besides the socket calls: handshake and dechunking, the conversation tracker's metadata reads,
 * routing-table checks, the forwarder and the query metrics. The socket reads and writes themselves, which
 * any user-space proxy pays (a bare `pipe` too), are what `npm run bench -- --only proxy-js` adds on top.
 *
 *   npx tsx bench/suites/proxy-codec.ts
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { PrometheusSink, Recorder } from '../../src/metrics/index.ts';
import { ProxiedConnection } from '../../src/proxy/connection.ts';
import { ProxyMetrics } from '../../src/proxy/metrics.ts';

type Side = 'client' | 'server';

/** Handshake (manifest v1, Bolt 5.8), HELLO + LOGON in one read, and the server's answers. */
const SETUP: ReadonlyArray<readonly [Side, string]> = [
  ['client', '6060b017000001ff000808050002040400000003'],
  ['server', '000001ff0300040404000404050002080500'],
  [
    'client',
    '000008050000afb101a28a757365725f6167656e74d0166e656f346a2d6a6176617363726970742f362e332e308a626f6c74' +
      '5f6167656e74a38770726f64756374d0166e656f346a2d6a6176617363726970742f362e332e3088706c6174666f726dd01a' +
      '6c696e757820362e31382e34342d66632d763539353b20783634d0106c616e67756167655f64657461696c73d0244e6f6465' +
      '2f32302e32302e32202876382031312e332e3234342e382d6e6f64652e33382900000041b16aa386736368656d6585626173' +
      '6963897072696e636970616c856e656f346a8b63726564656e7469616c73d013787878787878787878787878787878787878' +
      '780000',
  ],
  [
    'server',
    '0079b170a4867365727665728d4e656f346a2f352e32362e3330d01070726f746f636f6c5f76657273696f6e83352e388d63' +
      '6f6e6e656374696f6e5f696486626f6c742d388568696e7473a2d01f636f6e6e656374696f6e2e726563765f74696d656f75' +
      '745f7365636f6e6473788b7373722e656e61626c6564c30000',
  ],
  ['server', '0027b170a1d012616476657274697365645f616464726573738f6c6f63616c686f73743a33353536310000'],
];

/**
 * One `executeQuery('RETURN 1 AS value')`, read by read: BEGIN + RUN + PULL in one client read; the
 * server's SUCCESS to BEGIN, to RUN, then the RECORD and the PULL's SUCCESS; COMMIT and its SUCCESS.
 */
const RETURN_1: ReadonlyArray<readonly [Side, string]> = [
  [
    'client',
    '003fb111a389626f6f6b6d61726b7391d01f46423a6b63775150576f673649593152662b425552416e6352667759514f5182' +
      '6462856e656f346a846d6f6465817200000017b310d01152455455524e20312041532076616c7565a0a000000008b13fa181' +
      '6ec903e80000',
  ],
  ['server', '0003b170a00000'],
  ['server', '001fb170a387745f666972737400866669656c6473918576616c756583716964000000'],
  [
    'server',
    '0004b171910100000068b170a488737461747573657391a28a67716c5f737461747573853030303030d0127374617475735f' +
      '6465736372697074696f6ed01b6e6f74653a207375636365737366756c20636f6d706c6574696f6e8474797065817286745f' +
      '6c61737400826462856e656f346a0000',
  ],
  ['client', '0002b0120000'],
  ['server', '002db170a188626f6f6b6d61726bd01f46423a6b63775150576f673649593152662b425552416e6352667759514f510000'],
];

const QUERIES_PER_ROUND = 100_000;
const WARMUP_QUERIES = 20_000;
const ROUNDS = 7;

/** Just enough of a net.Socket for ProxiedConnection: writes are counted and dropped. */
class MemorySocket extends EventEmitter {
  destroyed = false;
  writableEnded = false;
  writableLength = 0;
  remoteAddress = '127.0.0.1';
  remotePort = 40000;
  bytesWritten = 0;
  write(data: Uint8Array): boolean {
    this.bytesWritten += data.length;
    return true;
  }
  pause(): this {
    return this;
  }
  resume(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  setTimeout(): this {
    return this;
  }
  end(): this {
    this.writableEnded = true;
    return this;
  }
  destroy(): this {
    if (!this.destroyed) {
      this.destroyed = true;
      queueMicrotask(() => this.emit('close'));
    }
    return this;
  }
}

export interface ProxyCodecResult {
  readsPerQuery: number;
  bytesPerQuery: number;
  /** Median over rounds of process CPU time (user + system) per query. */
  microsPerQuery: number;
  roundsMicrosPerQuery: number[];
}

/** `recorder`: what the proxy records into; query statistics are on when it carries them. */
export async function benchProxyCodec(
  recorder: Recorder = new Recorder({ sinks: [new PrometheusSink()] }),
): Promise<ProxyCodecResult> {
  const originalConnect = net.connect;
  let upstream: MemorySocket | null = null;
  // connectUpstream calls net.connect: hand it an in-memory socket that "connects" on the next turn.
  (net as { connect: unknown }).connect = () => {
    const socket = new MemorySocket();
    upstream = socket;
    setImmediate(() => socket.emit('connect'));
    return socket;
  };
  const client = new MemorySocket();
  try {
    const connection = new ProxiedConnection(
      1,
      client as unknown as net.Socket,
      {
        upstream: { host: 'neo4j', port: 7687, tls: { mode: 'off' }, uri: 'bolt://neo4j:7687' },
        advertisedAddress: '127.0.0.1:7687',
        handshakeTimeoutMs: 60_000,
        upstreamConnectTimeoutMs: 60_000,
        maxMessageBytes: 16 * 1024 * 1024,
      },
      {
        metrics: new ProxyMetrics(recorder),
        onProblem: (_connection, reason, error) => {
          throw new Error(`the replayed connection failed (${reason}): ${error.message}`);
        },
        onVersion: () => {},
        onClosed: () => {},
      },
    );
    const decode = (reads: ReadonlyArray<readonly [Side, string]>) =>
      reads.map(([side, hex]) => ({ side, data: Buffer.from(hex, 'hex') }));
    const setup = decode(SETUP);
    const query = decode(RETURN_1);
    const play = ({ side, data }: { side: Side; data: Buffer }) => {
      const socket = side === 'client' ? client : upstream;
      if (socket === null) throw new Error('no upstream socket yet');
      socket.emit('data', data);
    };
    const [first, ...rest] = setup;
    if (first) play(first);
    await new Promise((resolve) => setImmediate(resolve));
    for (const read of rest) play(read);
    const run = (count: number) => {
      for (let index = 0; index < count; index++) for (const read of query) play(read);
    };
    run(WARMUP_QUERIES);
    const rounds: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const start = process.cpuUsage();
      run(QUERIES_PER_ROUND);
      const used = process.cpuUsage(start);
      rounds.push((used.user + used.system) / QUERIES_PER_ROUND);
    }
    if (connection.openQueries !== 0) throw new Error('the replay left a query open: the capture is out of step');
    connection.flushTraffic();
    const sorted = [...rounds].sort((a, b) => a - b);
    return {
      readsPerQuery: query.length,
      bytesPerQuery: query.reduce((sum, read) => sum + read.data.length, 0),
      microsPerQuery: sorted[Math.floor(sorted.length / 2)] ?? Number.NaN,
      roundsMicrosPerQuery: rounds,
    };
  } finally {
    (net as { connect: unknown }).connect = originalConnect;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await benchProxyCodec();
  console.log(
    `proxy CPU per RETURN 1 query, sockets in memory: ${result.microsPerQuery.toFixed(2)} µs ` +
      `(${result.readsPerQuery} reads, ${result.bytesPerQuery} bytes per query; ${ROUNDS} rounds of ` +
      `${QUERIES_PER_ROUND.toLocaleString('en-US')} queries, median; rounds: ` +
      `${result.roundsMicrosPerQuery.map((micros) => micros.toFixed(2)).join(', ')})`,
  );
}
