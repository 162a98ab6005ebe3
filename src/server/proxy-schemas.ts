/**
 * JSON schemas of the proxy's maintenance routes (/proxy/pause, resume, reconnect, pools, clients), the
 * shapes of src/proxy/maintenance.ts written out for the OpenAPI document and the fuzzer that holds the
 * server to it. Kept beside http.ts rather than in it so the route table there stays readable.
 */
import {
  CLIENT_STATES,
  DEFAULT_DRAIN_TIMEOUT_SECONDS,
  MAX_DRAIN_TIMEOUT_SECONDS,
  UPSTREAM_STATES,
} from '../proxy/maintenance.ts';

function countsOf(names: readonly string[], description: string) {
  return {
    type: 'object',
    description,
    properties: Object.fromEntries(names.map((name) => [name, { type: 'integer', minimum: 0 }])),
    required: [...names],
    additionalProperties: false,
  } as const;
}

const clientCounts = countsOf(
  CLIENT_STATES,
  'client connections by state: login, in_unit, idle, waiting, held, closing',
);
const upstreamCounts = countsOf(UPSTREAM_STATES, 'upstreams by state: idle, in_use, opening, resetting');
const pausedSince = { type: 'string', format: 'date-time' } as const;

export const pauseQuerySchema = {
  type: 'object',
  properties: {
    drainTimeoutSeconds: {
      type: 'integer',
      minimum: 0,
      maximum: MAX_DRAIN_TIMEOUT_SECONDS,
      default: DEFAULT_DRAIN_TIMEOUT_SECONDS,
      description: 'how long to wait for in-flight transactions and queries to end before answering',
    },
  },
  additionalProperties: false,
} as const;

export const pauseReportSchema = {
  type: 'object',
  description:
    'The pool is paused: new logins, queries and transactions are held. drained says whether in-flight work ended within the timeout; running says what still runs (all zero when drained). The pause stays on either way until resume, or until proxy.pooling.maxPauseMs.',
  properties: {
    drained: { type: 'boolean' },
    paused: { type: 'boolean', description: 'false only when a resume or the maximum pause came before the answer' },
    pausedSince,
    maxPauseSeconds: { type: 'number', minimum: 0 },
    waitedSeconds: { type: 'number', minimum: 0 },
    running: {
      type: 'object',
      properties: {
        clients: clientCounts,
        unitsInFlight: { type: 'integer', minimum: 0 },
        queriesInFlight: { type: 'integer', minimum: 0 },
        upstreamsLent: { type: 'integer', minimum: 0 },
      },
      required: ['clients', 'unitsInFlight', 'queriesInFlight', 'upstreamsLent'],
      additionalProperties: false,
    },
  },
  required: ['drained', 'paused', 'pausedSince', 'maxPauseSeconds', 'waitedSeconds', 'running'],
  additionalProperties: false,
} as const;

export const resumeReportSchema = {
  type: 'object',
  description: 'Held clients proceed, in the order they arrived. Resuming a pool that is not paused changes nothing.',
  properties: {
    wasPaused: { type: 'boolean' },
    pausedSeconds: { type: 'number', minimum: 0 },
    released: { type: 'integer', minimum: 0, description: 'client connections the pause held' },
  },
  required: ['wasPaused', 'pausedSeconds', 'released'],
  additionalProperties: false,
} as const;

export const reconnectReportSchema = {
  type: 'object',
  description:
    'Every upstream open now is closed: idle ones at once, lent ones when their client returns them. New ones are opened on demand.',
  properties: { upstreams: { type: 'integer', minimum: 0 } },
  required: ['upstreams'],
  additionalProperties: false,
} as const;

export const poolsViewSchema = {
  type: 'object',
  description: "The pool (pgbouncer's SHOW POOLS): upstreams by state and by key, waiting and held clients, the pause.",
  properties: {
    mode: { type: 'string', enum: ['session', 'transaction'] },
    paused: { type: 'boolean' },
    pausedSince: { ...pausedSince, nullable: true },
    pausedSeconds: { type: 'number', minimum: 0 },
    maxPauseSeconds: { type: 'number', minimum: 0 },
    neo4jReachable: { type: 'boolean' },
    maxUpstreams: { type: 'integer', minimum: 1 },
    upstreams: upstreamCounts,
    waiting: { type: 'integer', minimum: 0 },
    held: { type: 'integer', minimum: 0 },
    lent: { type: 'integer', minimum: 0 },
    keys: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          key: { type: 'string', description: 'short hash of the pool key; says nothing of the login' },
          bolt: { type: 'string' },
          upstreams: upstreamCounts,
        },
        required: ['key', 'bolt', 'upstreams'],
        additionalProperties: false,
      },
    },
    members: {
      type: 'array',
      description:
        "Cluster routing only (neo4j:// upstream, transaction mode): each member's pool; the fields above are then the seed's, which verifies logins.",
      items: {
        type: 'object',
        properties: {
          address: { type: 'string', description: 'host:port as the routing table names it' },
          roles: {
            type: 'array',
            items: { type: 'string', enum: ['writer', 'reader', 'router'] },
            description: 'roles in the tables as last fetched; none: dropped until the next refresh',
          },
          reachable: { type: 'boolean' },
          upstreams: upstreamCounts,
          lent: { type: 'integer', minimum: 0 },
        },
        required: ['address', 'roles', 'reachable', 'upstreams', 'lent'],
        additionalProperties: false,
      },
    },
  },
  required: [
    'mode',
    'paused',
    'pausedSince',
    'pausedSeconds',
    'maxPauseSeconds',
    'neo4jReachable',
    'maxUpstreams',
    'upstreams',
    'waiting',
    'held',
    'lent',
    'keys',
  ],
  additionalProperties: false,
} as const;

export const clientsViewSchema = {
  type: 'object',
  description: "Client connections (pgbouncer's SHOW CLIENTS): no user names, no query text.",
  properties: {
    mode: { type: 'string', enum: ['off', 'session', 'transaction'] },
    total: { type: 'integer', minimum: 0 },
    byState: clientCounts,
    clients: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'integer', minimum: 0 },
          remote: { type: 'string', description: 'host:port of the client' },
          userAgent: { type: 'string', description: 'driver family' },
          state: { type: 'string', enum: [...CLIENT_STATES] },
          stateSeconds: { type: 'number', minimum: 0 },
          queries: { type: 'integer', minimum: 0 },
        },
        required: ['id', 'remote', 'userAgent', 'state', 'stateSeconds', 'queries'],
        additionalProperties: false,
      },
    },
  },
  required: ['mode', 'total', 'byState', 'clients'],
  additionalProperties: false,
} as const;
