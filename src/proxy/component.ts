/**
 * The Bolt proxy as a sidecar Component, configured from the `proxy` section, forwarding to
 * neo4j.uri (with neo4j.tlsCaFile for +s URIs).
 */
import { requireNeo4jUri } from '../config/index.ts';
import type { Component, ComponentFactory } from '../contracts.ts';
import { BoltProxy } from './listener.ts';
import { upstreamFromUri } from './upstream.ts';

export interface BoltProxyComponent extends Component {
  /** The running proxy between start() and stop(). */
  readonly proxy: BoltProxy | undefined;
}

export const PROXY_COMPONENT_NAME = 'proxy';

export function isBoltProxyComponent(component: Component): component is BoltProxyComponent {
  return component.name === PROXY_COMPONENT_NAME && 'proxy' in component;
}

export const proxyComponent: ComponentFactory = ({ config, recorder, logger }) => {
  if (!config.proxy.enabled) return undefined;
  // Parsed (and the CA file read) now, so a bad URI or path fails start-up, not the first client.
  const upstream = upstreamFromUri(requireNeo4jUri(config), { tlsCaFile: config.neo4j.tlsCaFile });
  let proxy: BoltProxy | undefined;
  const component: BoltProxyComponent = {
    name: PROXY_COMPONENT_NAME,
    get proxy() {
      return proxy;
    },
    async start() {
      proxy = await BoltProxy.start({
        upstream,
        recorder,
        logger,
        host: config.proxy.host,
        port: config.proxy.port,
        ...(config.proxy.advertisedAddress ? { advertisedAddress: config.proxy.advertisedAddress } : {}),
        maxConnections: config.proxy.maxConnections,
        handshakeTimeoutMs: config.proxy.handshakeTimeoutMs,
        upstreamConnectTimeoutMs: config.neo4j.connectionTimeoutMs,
        maxMessageBytes: config.proxy.maxMessageBytes,
        shutdownGraceMs: config.proxy.shutdownGraceMs,
        idleTransactionTimeoutMs: config.proxy.idleTransactionTimeoutMs,
        pooling: config.proxy.pooling,
      });
    },
    async stop() {
      await proxy?.stop();
    },
    async readiness() {
      return proxy ? { ok: true, detail: `listening on ${proxy.address}` } : { ok: false, detail: 'not listening' };
    },
    status() {
      return proxy ? { ...proxy.status() } : { listening: false };
    },
  };
  return component;
};
