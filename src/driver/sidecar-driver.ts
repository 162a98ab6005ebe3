/**
 * The sidecar's own driver, built from the `neo4j` config section: the pooled driver the probes and
 * /readyz use, and the pool-of-one drivers of the fresh-connect probe.
 */
import { readFileSync } from 'node:fs';
import neo4j, { type AuthToken, type AuthTokenManager, type Driver, type Config as DriverConfig } from 'neo4j-driver';
import { requireNeo4jUri, type SidecarConfig } from '../config/index.ts';
import { SIDECAR_VERSION } from '../contracts.ts';
import type { DriverLog } from './driver-log.ts';

/**
 * TLS CA files need the explicit encryption settings. `auth` is the credentials gate's token manager
 * (credentials.ts), or one token for the gate's own verification login. `log` is shared by all the
 * sidecar's drivers, so an outage is one line however many of them see it (driver-log.ts).
 */
export function createSidecarDriver(config: SidecarConfig, log: DriverLog, auth: AuthToken | AuthTokenManager): Driver {
  const uri = requireNeo4jUri(config);
  const driverConfig: DriverConfig = {
    maxConnectionPoolSize: config.neo4j.maxConnectionPoolSize,
    connectionAcquisitionTimeout: config.neo4j.connectionAcquisitionTimeoutMs,
    connectionTimeout: config.neo4j.connectionTimeoutMs,
    userAgent: `neo4j-pool-sidecar/${SIDECAR_VERSION}`,
    logging: { level: 'warn', logger: log.log },
  };
  let effectiveUri = uri;
  if (config.neo4j.tlsCaFile && /^(bolt|neo4j)\+s:/.test(uri)) {
    // The driver refuses trust settings on +s URIs, so the same intent is spelt out explicitly.
    effectiveUri = uri.replace('+s:', ':');
    driverConfig.encrypted = 'ENCRYPTION_ON';
    driverConfig.trust = 'TRUST_CUSTOM_CA_SIGNED_CERTIFICATES';
    driverConfig.trustedCertificates = [config.neo4j.tlsCaFile];
    readFileSync(config.neo4j.tlsCaFile); // fail at start-up, not on the first connection
  }
  return neo4j.driver(effectiveUri, auth, driverConfig);
}
