/**
 * The chart's values schema (helm/neo4j-pool-sidecar/values.schema.json): `config` is the sidecar's
 * own config schema, so a misspelt option or an out-of-range threshold fails `helm install` instead
 * of crash-looping the sidecar.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { configSchema } from '../../src/config/schema.ts';
import { CHART_PATH, type GeneratedFile, jsonFile } from './files.ts';

type JsonSchema = Record<string, unknown>;

const str = (extra: JsonSchema = {}): JsonSchema => ({ type: 'string', ...extra });
const bool: JsonSchema = { type: 'boolean' };
const stringMap: JsonSchema = { type: 'object', additionalProperties: { type: 'string' } };
const freeObject: JsonSchema = { type: 'object' };
const portNumber: JsonSchema = { type: 'integer', minimum: 1, maximum: 65535 };
const closed = (properties: Record<string, JsonSchema>, extra: JsonSchema = {}): JsonSchema => ({
  type: 'object',
  properties,
  additionalProperties: false,
  ...extra,
});
const monitor = (description: string): JsonSchema =>
  closed({ enabled: bool, interval: str(), scrapeTimeout: str(), additionalLabels: stringMap }, { description });

function sidecarConfigSchema(): JsonSchema {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  delete schema.$schema;
  const neo4j = (schema.properties as Record<string, { properties: Record<string, unknown> }>).neo4j!;
  // The chart sets these from neo4jCredentials; a password in values is refused.
  delete neo4j.properties.password;
  delete neo4j.properties.passwordFile;
  // Set by the chart from adminToken.
  const http = (schema.properties as Record<string, { properties: Record<string, unknown> }>).http!;
  delete http.properties.adminTokenFile;
  return { ...schema, description: "The sidecar's configuration file (docs/configuration.md), without the password." };
}

export function valuesSchema(): JsonSchema {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'neo4j-pool-sidecar chart values',
    ...closed({
      image: closed({
        repository: str({ minLength: 1 }),
        tag: str(),
        pullPolicy: str({ enum: ['Always', 'IfNotPresent', 'Never'] }),
      }),
      sidecarMode: str({ enum: ['auto', 'native', 'regular'] }),
      neo4jCredentials: closed(
        { existingSecret: str({ minLength: 1 }), passwordKey: str({ minLength: 1 }) },
        { required: ['existingSecret', 'passwordKey'] },
      ),
      adminToken: closed(
        { existingSecret: str(), tokenKey: str({ minLength: 1 }) },
        { description: 'Secret holding the bearer token of the operator and admin endpoints; empty: loopback only.' },
      ),
      config: sidecarConfigSchema(),
      ports: closed({ metrics: portNumber, bolt: portNumber }),
      resources: freeObject,
      securityContext: freeObject,
      livenessProbe: freeObject,
      readinessProbe: freeObject,
      startupProbe: freeObject,
      extraEnv: { type: 'array', items: freeObject },
      service: closed({
        enabled: bool,
        type: str({ enum: ['ClusterIP', 'NodePort', 'LoadBalancer'] }),
        annotations: stringMap,
      }),
      serviceMonitor: monitor('A prometheus-operator ServiceMonitor for the metrics Service.'),
      podMonitor: monitor('A prometheus-operator PodMonitor for the sidecar pods.'),
      prometheusRule: closed({ enabled: bool, additionalLabels: stringMap }),
      dashboards: closed({ enabled: bool, namespace: str(), labels: stringMap, annotations: stringMap }),
      census: closed(
        {
          enabled: bool,
          resources: freeObject,
          podAnnotations: stringMap,
          nodeSelector: stringMap,
          tolerations: { type: 'array' },
          affinity: freeObject,
        },
        {
          description: 'One instance runs the server-wide census for the release; the sidecars beside workers do not.',
        },
      ),
      exampleWorker: closed({
        enabled: bool,
        replicas: { type: 'integer', minimum: 0 },
        image: closed({ repository: str({ minLength: 1 }), tag: str({ minLength: 1 }), pullPolicy: str() }),
        intervalSeconds: { type: 'integer', minimum: 1 },
        resources: freeObject,
        securityContext: freeObject,
        podAnnotations: stringMap,
        nodeSelector: stringMap,
        tolerations: { type: 'array' },
        affinity: freeObject,
      }),
      nameOverride: str(),
      fullnameOverride: str(),
      commonLabels: stringMap,
      // Helm passes a parent chart's globals to every subchart.
      global: freeObject,
    }),
  };
}

export function valuesSchemaFiles(): GeneratedFile[] {
  return [jsonFile(join(CHART_PATH, 'values.schema.json'), valuesSchema())];
}
