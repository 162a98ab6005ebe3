/**
 * The sidecar's HTTP surface: /metrics for Prometheus, /healthz and /readyz for Kubernetes
 * probes, /status for people. Everything it reports is read from the recorder and the
 * status providers it is given; it owns no state of its own.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from '../logger.ts';
import type { PrometheusSink } from '../metrics/prometheus.ts';

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
  logger?: Logger;
}

function wantsOpenMetrics(accept: string | undefined): boolean {
  return accept?.includes('application/openmetrics-text') === true;
}

export function createHttpServer(options: HttpServerOptions): FastifyInstance {
  const app = Fastify({
    // Scrapes and probes arrive every few seconds: per-request info lines would drown the log, so the
    // HTTP logger starts at warn (server errors are still logged).
    loggerInstance: options.logger?.child({ component: 'http' }, { level: 'warn' }) as FastifyBaseLogger | undefined,
    // Scrapes and probes are small GETs; a large body is never legitimate here.
    bodyLimit: 16 * 1024,
    return503OnClosing: true,
  });

  app.get('/metrics', async (request, reply) => {
    const { contentType, body } = await options.prometheus.render(
      wantsOpenMetrics(request.headers.accept) ? 'openmetrics' : 'prometheus',
    );
    reply.type(contentType);
    return body;
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const readiness = await options.readiness();
    reply.code(readiness.ready ? 200 : 503);
    return readiness;
  });

  app.get('/status', async () => options.status());

  return app;
}
