/**
 * The sidecar's HTTP surface: /metrics for Prometheus, /healthz and /readyz for Kubernetes
 * probes, /status for people, /queries, the proxy's maintenance verbs and views under /proxy/ (see
 * src/proxy/maintenance.ts), and /openapi.json describing all of them. Everything it reports is
 * read from the recorder and the status providers it is given; it owns no state of its own.
 *
 * Every route carries a full schema, responses included, because the OpenAPI document is built
 * from those schemas and a fuzzer (test/reliability/http-fuzz.test.ts) holds the server to it:
 * a response the document does not describe is a defect, either of the server or of the schema.
 */
import { STATUS_CODES } from 'node:http';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import { SIDECAR_VERSION } from '../contracts.ts';
import type { Logger } from '../logger.ts';
import { OPENMETRICS_CONTENT_TYPE } from '../metrics/openmetrics.ts';
import type { PrometheusSink } from '../metrics/prometheus.ts';
import type { ProxyMaintenance } from '../proxy/index.ts';
import { QUERY_SORTS, type QuerySort, type QueryStatistics } from '../querystats/index.ts';
import { type AccessLevel, AdminAccess } from './admin-access.ts';
import {
  clientsViewSchema,
  pauseQuerySchema,
  pauseReportSchema,
  poolsViewSchema,
  reconnectReportSchema,
  resumeReportSchema,
} from './proxy-schemas.ts';

export interface Readiness {
  ready: boolean;
  /** Why not ready, in words an operator can act on. */
  reason?: string;
  checks?: Record<string, { ok: boolean; detail?: string }>;
}

export interface HttpServerOptions {
  prometheus: PrometheusSink;
  readiness: () => Promise<Readiness>;
  /** Anything JSON-serialisable; secrets must already be masked. */
  status: () => Promise<Record<string, unknown>> | Record<string, unknown>;
  /** Query statistics behind /queries; absent when queryStats.enabled is false (the routes answer 404). */
  queries?: QueryStatistics;
  /** The running Bolt proxy behind /proxy/*; absent or undefined when proxy.enabled is false (the routes answer 404). */
  proxy?: () => ProxyMaintenance | undefined;
  /** Who may call operator and admin endpoints (see admin-access.ts); default: no token, admin on loopback only. */
  access?: AdminAccess;
  logger?: Logger;
}

/** Most rows /queries returns at once. */
export const MAX_QUERIES_LIMIT = 1000;

/** Where the OpenAPI document is served. */
export const OPENAPI_PATH = '/openapi.json';

// The exposition content types in full, as prom-client and our OpenMetrics renderer send them, so
// that the document and the Content-Type header agree to the letter.
const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8';

function wantsOpenMetrics(accept: string | undefined): boolean {
  return accept?.includes('application/openmetrics-text') === true;
}

/**
 * The body of every error fastify itself answers with (unknown route, malformed request, shutting
 * down) and of our error handler, so clients can rely on one shape with a reason in `message`.
 */
const errorSchema = {
  type: 'object',
  description: 'Why the request was not served.',
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string', description: 'fastify error code, when there is one' },
    error: { type: 'string', description: 'the HTTP reason phrase' },
    message: { type: 'string', description: 'what was wrong, in words' },
  },
  required: ['statusCode', 'error', 'message'],
  additionalProperties: false,
} as const;

const badRequest = {
  ...errorSchema,
  description: 'The request was malformed (for example a URL that does not decode).',
};
const shuttingDown = { ...errorSchema, description: 'The sidecar is shutting down and no longer serves requests.' };
const unauthorized = {
  ...errorSchema,
  description: 'http.adminTokenFile is configured and the request carried no bearer token, or another one.',
};
const forbidden = {
  ...errorSchema,
  description: 'An admin endpoint called from outside loopback while no http.adminTokenFile is configured.',
};

/** The responses every guarded route may give besides its own (see admin-access.ts). */
function guarded(level: Exclude<AccessLevel, 'open'>) {
  return level === 'admin' ? { 401: unauthorized, 403: forbidden } : { 401: unauthorized };
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route; absent means open. */
    access?: AccessLevel;
  }
}

const readinessSchema = {
  type: 'object',
  properties: {
    ready: { type: 'boolean' },
    reason: { type: 'string', description: 'why not ready, present only when not ready' },
    checks: {
      type: 'object',
      description: 'one entry per check: neo4j, and each component that gates readiness',
      additionalProperties: {
        type: 'object',
        properties: { ok: { type: 'boolean' }, detail: { type: 'string' } },
        required: ['ok'],
        additionalProperties: false,
      },
    },
  },
  required: ['ready'],
  additionalProperties: false,
} as const;

const statusSchema = {
  type: 'object',
  description:
    'Version, uptime, the effective configuration with secrets masked, the pools the recorder sees, and one section per running component (proxy, probes, alerts).',
  properties: {
    version: { type: 'string' },
    uptimeSeconds: { type: 'integer', minimum: 0 },
    config: { type: 'object', additionalProperties: true },
    pools: {
      type: 'array',
      items: {
        type: 'object',
        properties: { pool: { type: 'string' }, address: { type: 'string' } },
        required: ['pool', 'address'],
        additionalProperties: { type: 'number' },
      },
    },
  },
  // Component sections are owned by the components; the document promises only that they are objects.
  additionalProperties: { type: 'object', additionalProperties: true },
} as const;

const countsSchema = {
  type: 'object',
  additionalProperties: { type: 'integer', minimum: 0 },
} as const;

/** One row of /queries and of the /status top 10. */
export const queryRowSchema = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'short fingerprint id (hash of the normalised text), "other" or "unreadable"' },
    query: { type: 'string', description: 'normalised text: literal values replaced by ?' },
    database: { type: 'string' },
    mode: { type: 'string', enum: ['read', 'write', 'mixed', 'none'] },
    calls: { type: 'integer', minimum: 0 },
    errors: { type: 'integer', minimum: 0 },
    errorsByCode: { ...countsSchema, description: 'failed calls by Neo4j status code (top values, rest "other")' },
    totalSeconds: { type: 'number', minimum: 0 },
    meanSeconds: { type: 'number', minimum: 0 },
    maxSeconds: { type: 'number', minimum: 0 },
    p50Seconds: { type: 'number', minimum: 0 },
    p95Seconds: { type: 'number', minimum: 0 },
    p99Seconds: { type: 'number', minimum: 0 },
    records: { type: 'integer', minimum: 0, description: 'records streamed to clients' },
    clients: { ...countsSchema, description: 'calls by client family (driver user agent, or in-process source)' },
    attribution: { ...countsSchema, description: 'calls by the queryStats.metadataKey value of tx_metadata' },
    firstSeen: { type: 'string', format: 'date-time' },
    lastSeen: { type: 'string', format: 'date-time' },
    rankErrorSeconds: {
      type: 'number',
      minimum: 0,
      description: 'space-saving over-estimate this entry ranks with; 0 means its figures are exact since `since`',
    },
  },
  required: [
    'id',
    'query',
    'database',
    'mode',
    'calls',
    'errors',
    'errorsByCode',
    'totalSeconds',
    'meanSeconds',
    'maxSeconds',
    'p50Seconds',
    'p95Seconds',
    'p99Seconds',
    'records',
    'clients',
    'firstSeen',
    'lastSeen',
    'rankErrorSeconds',
  ],
  additionalProperties: false,
} as const;

const queriesSchema = {
  type: 'object',
  description: 'Statistics per query fingerprint and database since start or the last reset, like pg_stat_statements.',
  properties: {
    since: { type: 'string', format: 'date-time' },
    entries: { type: 'integer', minimum: 0, description: 'fingerprint x database entries held' },
    maxFingerprints: { type: 'integer', minimum: 1, description: 'the bound on entries (queryStats.maxFingerprints)' },
    totalCalls: { type: 'integer', minimum: 0, description: 'calls over all queries, held or folded into "other"' },
    totalSeconds: { type: 'number', minimum: 0 },
    sort: { type: 'string', enum: QUERY_SORTS },
    queries: { type: 'array', items: queryRowSchema },
  },
  required: ['since', 'entries', 'maxFingerprints', 'totalCalls', 'totalSeconds', 'sort', 'queries'],
  additionalProperties: false,
} as const;

const queryStatsDisabled = {
  ...errorSchema,
  description: 'Query statistics are off (queryStats.enabled: false).',
};
const unsupportedMediaType = {
  ...errorSchema,
  description: 'The request carried a body of a content type this route does not take.',
};

function disabledError(): Error & { statusCode: number } {
  return Object.assign(new Error('query statistics are disabled (queryStats.enabled: false)'), { statusCode: 404 });
}

function notFound(message: string): Error & { statusCode: number } {
  return Object.assign(new Error(message), { statusCode: 404 });
}

const proxyOff = {
  ...errorSchema,
  description: 'The Bolt proxy is not running (proxy.enabled: false).',
};
const poolingOff = {
  ...errorSchema,
  description:
    'The Bolt proxy is not running, or runs without a pool (proxy.pooling.mode: off): nothing to pause or show.',
};

export function createHttpServer(options: HttpServerOptions): FastifyInstance {
  const app = Fastify({
    // Scrapes and probes arrive every few seconds: per-request info lines would drown the log, so the
    // HTTP logger starts at warn (server errors are still logged).
    loggerInstance: options.logger?.child({ component: 'http' }, { level: 'warn' }) as FastifyBaseLogger | undefined,
    // Scrapes and probes are small GETs; a large body is never legitimate here.
    bodyLimit: 16 * 1024,
    return503OnClosing: true,
  });

  void app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'neo4j-pool-sidecar',
        version: SIDECAR_VERSION,
        description:
          'Neo4j connection pool metrics, health and status. Any other path or method answers 404, and a malformed request 400, both with the error body (statusCode, error, message).',
      },
    },
    // HEAD is answered on every GET route, so the document says so too.
    exposeHeadRoutes: true,
  });

  // Any error a handler throws becomes one documented shape; a 5xx is logged because it is our bug.
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const statusCode = error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 500;
    if (statusCode >= 500) request.log.error({ err: error, url: request.url }, 'request failed');
    void reply.code(statusCode).send({
      statusCode,
      ...(error.code ? { code: error.code } : {}),
      error: STATUS_CODES[statusCode] ?? 'Error',
      message: statusCode >= 500 ? 'internal error, see the sidecar log' : error.message,
    });
  });

  const access = options.access ?? new AdminAccess(null);
  app.addHook('onRequest', async (request, reply) => {
    const level = request.routeOptions.config.access ?? 'open';
    const decision = access.decide(level, request.socket.remoteAddress, request.headers.authorization);
    if (decision.allowed) return;
    if (decision.statusCode === 401) void reply.header('www-authenticate', 'Bearer realm="neo4j-pool-sidecar"');
    await reply.code(decision.statusCode).send({
      statusCode: decision.statusCode,
      error: STATUS_CODES[decision.statusCode] ?? 'Error',
      message: decision.message,
    });
    return reply;
  });

  // Routes go in a plugin registered after swagger, so swagger's onRoute hook is in place when they are
  // added: routes added directly on the instance would be added before the plugin loads and be missed.
  void app.register(async (routes) => {
    routes.get(
      '/metrics',
      {
        schema: {
          summary: 'Metrics in the Prometheus text format, or OpenMetrics when the Accept header asks for it',
          headers: {
            type: 'object',
            properties: {
              accept: {
                type: 'string',
                description: 'containing application/openmetrics-text selects OpenMetrics 1.0.0',
              },
            },
          },
          response: {
            200: {
              description: 'The current metrics.',
              content: {
                [PROMETHEUS_TEXT]: { schema: { type: 'string' } },
                [OPENMETRICS_CONTENT_TYPE]: { schema: { type: 'string' } },
              },
            },
            400: badRequest,
            503: shuttingDown,
          },
        },
      },
      async (request, reply) => {
        const { contentType, body } = await options.prometheus.render(
          wantsOpenMetrics(request.headers.accept) ? 'openmetrics' : 'prometheus',
        );
        reply.type(contentType);
        return body;
      },
    );

    routes.get(
      '/healthz',
      {
        schema: {
          summary: 'Liveness: the process answers; does not depend on Neo4j',
          response: {
            200: {
              description: 'Alive.',
              type: 'object',
              properties: { status: { type: 'string', enum: ['ok'] } },
              required: ['status'],
              additionalProperties: false,
            },
            400: badRequest,
            503: shuttingDown,
          },
        },
      },
      async () => ({ status: 'ok' as const }),
    );

    routes.get(
      '/readyz',
      {
        schema: {
          summary: 'Readiness: Neo4j reachable and every readiness-gating component healthy',
          description:
            'Answered at once from state the sidecar keeps (a background check of Neo4j every 2 s with a 2 s deadline, and the last probe run), never by a round trip to Neo4j of its own, so it answers even while Neo4j does not.',
          response: {
            200: { description: 'Ready.', ...readinessSchema },
            400: badRequest,
            503: {
              description: 'Not ready (with the reason), or shutting down.',
              anyOf: [readinessSchema, errorSchema],
            },
          },
        },
      },
      async (_request, reply) => {
        let readiness: Readiness;
        try {
          readiness = await options.readiness();
        } catch (error) {
          // A readiness check that cannot complete is a reason not to take traffic, not a server error:
          // Kubernetes should see 503 with the cause rather than a 500 it treats the same but explains less.
          readiness = { ready: false, reason: `readiness check failed: ${(error as Error).message}` };
        }
        reply.code(readiness.ready ? 200 : 503);
        return readiness;
      },
    );

    routes.get(
      '/status',
      {
        config: { access: 'operator' },
        schema: {
          summary: 'What the sidecar is doing, for people (secrets masked)',
          response: {
            200: statusSchema,
            400: badRequest,
            ...guarded('operator'),
            503: shuttingDown,
          },
        },
      },
      async () => options.status(),
    );

    routes.get(
      '/queries',
      {
        config: { access: 'operator' },
        schema: {
          summary: 'Query statistics by fingerprint, heaviest first (pg_stat_statements for Neo4j)',
          querystring: {
            type: 'object',
            properties: {
              sort: {
                type: 'string',
                enum: QUERY_SORTS,
                default: 'total',
                description: 'order: total or mean time, calls, errors',
              },
              limit: {
                type: 'integer',
                minimum: 1,
                maximum: MAX_QUERIES_LIMIT,
                default: 100,
                description: 'rows returned',
              },
            },
            additionalProperties: false,
          },
          response: {
            200: queriesSchema,
            400: {
              ...errorSchema,
              description: 'A bad sort or limit (the message says which), or a malformed request.',
            },
            ...guarded('operator'),
            404: queryStatsDisabled,
            503: shuttingDown,
          },
        },
      },
      async (request) => {
        const statistics = options.queries;
        if (statistics === undefined) throw disabledError();
        const { sort, limit } = request.query as { sort: QuerySort; limit: number };
        return { ...statistics.snapshot({ sort, limit }), sort };
      },
    );

    routes.post(
      '/queries/reset',
      {
        config: { access: 'admin' },
        schema: {
          summary: 'Forget all query statistics; counting starts again now',
          response: {
            200: {
              description: 'Reset.',
              type: 'object',
              properties: { since: { type: 'string', format: 'date-time' } },
              required: ['since'],
              additionalProperties: false,
            },
            400: badRequest,
            ...guarded('admin'),
            404: queryStatsDisabled,
            415: unsupportedMediaType,
            503: shuttingDown,
          },
        },
      },
      async (request) => {
        const statistics = options.queries;
        if (statistics === undefined) throw disabledError();
        statistics.reset();
        options.logger?.info({ component: 'queryStats', remote: request.ip }, 'query statistics reset');
        return { since: statistics.since };
      },
    );

    const runningProxy = (): ProxyMaintenance => {
      const proxy = options.proxy?.();
      if (proxy === undefined) throw notFound('the Bolt proxy is not running (proxy.enabled: false)');
      return proxy;
    };
    const pooledProxy = (): ProxyMaintenance => {
      const proxy = runningProxy();
      if (proxy.poolingMode === 'off') {
        throw notFound('the Bolt proxy runs without a pool (proxy.pooling.mode: off): nothing to pause or show');
      }
      return proxy;
    };
    const logMaintenance = (verb: string, remote: string, fields: object) =>
      options.logger?.info({ component: 'proxy', remote, ...fields }, `proxy ${verb} (admin request)`);

    routes.post(
      '/proxy/pause',
      {
        config: { access: 'admin' },
        schema: {
          summary: "Pause the pool (pgbouncer's PAUSE): hold new work, wait for in-flight work to end, report",
          description:
            'Logins, auto-commit queries and BEGINs that need an upstream are held from now on; the answer comes once no upstream is lent (drained) or after drainTimeoutSeconds, with what still runs. Held clients proceed on POST /proxy/resume, or by themselves after proxy.pooling.maxPauseMs.',
          querystring: pauseQuerySchema,
          response: {
            200: pauseReportSchema,
            400: { ...errorSchema, description: 'A bad drainTimeoutSeconds, or a malformed request.' },
            ...guarded('admin'),
            404: poolingOff,
            415: unsupportedMediaType,
            503: shuttingDown,
          },
        },
      },
      async (request) => {
        const proxy = pooledProxy();
        const { drainTimeoutSeconds } = request.query as { drainTimeoutSeconds: number };
        const report = await proxy.pause({ drainTimeoutMs: drainTimeoutSeconds * 1000 });
        logMaintenance('pause', request.ip, { drained: report.drained, running: report.running });
        return report;
      },
    );

    const verbRoute = <T extends object>(
      verb: 'resume' | 'reconnect',
      summary: string,
      schema: object,
      act: (proxy: ProxyMaintenance) => T,
    ) =>
      routes.post(
        `/proxy/${verb}`,
        {
          config: { access: 'admin' },
          schema: {
            summary,
            response: {
              200: schema,
              400: badRequest,
              ...guarded('admin'),
              404: poolingOff,
              415: unsupportedMediaType,
              503: shuttingDown,
            },
          },
        },
        async (request) => {
          const report = act(pooledProxy());
          logMaintenance(verb, request.ip, report);
          return report;
        },
      );
    verbRoute(
      'resume',
      "Resume the pool (pgbouncer's RESUME): held clients proceed in arrival order",
      resumeReportSchema,
      (proxy) => proxy.resume(),
    );
    verbRoute(
      'reconnect',
      "Reconnect (pgbouncer's RECONNECT): close every upstream at its next return, open new ones on demand",
      reconnectReportSchema,
      (proxy) => proxy.reconnect(),
    );

    routes.get(
      '/proxy/pools',
      {
        config: { access: 'operator' },
        schema: {
          summary: "The pool's upstreams by state and key, waiting and held clients, the pause (SHOW POOLS)",
          response: {
            200: poolsViewSchema,
            400: badRequest,
            ...guarded('operator'),
            404: poolingOff,
            503: shuttingDown,
          },
        },
      },
      async () => pooledProxy().pools(),
    );

    routes.get(
      '/proxy/clients',
      {
        config: { access: 'operator' },
        schema: {
          summary: 'Every client connection of the proxy: state, time in it, queries (SHOW CLIENTS)',
          response: {
            200: clientsViewSchema,
            400: badRequest,
            ...guarded('operator'),
            404: proxyOff,
            503: shuttingDown,
          },
        },
      },
      async () => runningProxy().clients(),
    );

    routes.get(
      OPENAPI_PATH,
      {
        schema: {
          summary: 'This document',
          response: {
            200: {
              description: 'The OpenAPI 3 document of this server.',
              type: 'object',
              properties: { openapi: { type: 'string' } },
              required: ['openapi'],
              additionalProperties: true,
            },
            400: badRequest,
            503: shuttingDown,
          },
        },
      },
      async () => routes.swagger(),
    );
  });

  return app;
}
