/**
 * A transparent TCP relay in front of a real Neo4j that notes, for every connection through it,
 * whether the client logged in: sent LOGON (Bolt 5.1+) or a HELLO carrying credentials (before 5.1),
 * and every request's signature. The bytes pass unchanged; only the client's side is decoded, with the
 * project's codec. A connection can be silenced: both sockets stay open and nothing more passes, as
 * when a firewall or NAT drops an idle connection without telling either end.
 */
import net from 'node:net';
import { BoltDechunker, BoltHandshake, BoltSignature, decodeBoltMessage } from '../../src/proxy/bolt/index.ts';
import { splitAddress } from './raw-bolt.ts';

export interface RelayedConnection {
  readonly openedAt: number;
  /** The client sent credentials on this connection. */
  loggedIn: boolean;
  /** Signatures of the requests the client sent, in order. */
  readonly requests: number[];
  /** From now on nothing passes either way, and neither end is told. */
  silence(): void;
}

export interface BoltRelay {
  /** bolt://127.0.0.1:<port> of the relay. */
  readonly uri: string;
  readonly connections: readonly RelayedConnection[];
  close(): Promise<void>;
}

export async function startBoltRelay(upstreamUri: string): Promise<BoltRelay> {
  const [host, port] = splitAddress(new URL(upstreamUri).host);
  const connections: RelayedConnection[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    let silenced = false;
    const seen: RelayedConnection = {
      openedAt: Date.now(),
      loggedIn: false,
      requests: [],
      silence: () => {
        silenced = true;
      },
    };
    connections.push(seen);
    const upstream = net.connect({ host, port });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    const handshake = new BoltHandshake();
    const dechunker = new BoltDechunker({
      keepPayload: (signature) => signature === BoltSignature.HELLO || signature === BoltSignature.LOGON,
      onMessage: (frame) => {
        seen.requests.push(frame.signature);
        if (frame.signature === BoltSignature.LOGON) seen.loggedIn = true;
        if (frame.signature === BoltSignature.HELLO && frame.payload) {
          const [extra] = decodeBoltMessage(frame.payload).fields;
          if (extra instanceof Map && extra.has('credentials')) seen.loggedIn = true;
        }
      },
    });
    upstream.on('data', (data: Buffer) => {
      if (silenced) return;
      if (!handshake.serverComplete) handshake.feedServer(data);
      client.write(data);
    });
    client.on('data', (data: Buffer) => {
      if (silenced) return;
      if (handshake.clientComplete) dechunker.feed(data);
      else {
        const progress = handshake.feedClient(data);
        if (progress.state === 'complete' && progress.leftover.length > 0) dechunker.feed(progress.leftover);
      }
      upstream.write(data);
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: relayPort } = server.address() as net.AddressInfo;
  return {
    uri: `bolt://127.0.0.1:${relayPort}`,
    connections,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Relayed connections that carried Bolt messages: a proxy's upstreams, not its version-learning handshakes. */
export function sessions(relay: BoltRelay): RelayedConnection[] {
  return relay.connections.filter((connection) => connection.requests.length > 0);
}
