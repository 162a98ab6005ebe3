/**
 * The served OpenAPI document describes exactly the routes fastify serves, so a route added without
 * a schema (and so missing from the document the fuzzer works from) fails here; and requests the
 * sidecar cannot serve get a 4xx with a reason in the documented error shape, never a 5xx.
 * No Neo4j: the server is built with stub providers and driven with inject().
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { PrometheusSink } from '../../src/metrics/prometheus.ts';
import { createHttpServer, OPENAPI_PATH, type Readiness } from '../../src/server/http.ts';

interface Operation {
  responses: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}

interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
}

interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
}

/** `METHOD /path` for every route fastify routes, read from its own route table. */
function registeredRoutes(app: FastifyInstance): string[] {
  const routes: string[] = [];
  // A route under another one is printed as a child of it, indented, with only its own part of the path.
  const prefixes: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /(\/\S*)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!match) continue;
    const depth = Math.floor(match.index / 4);
    prefixes.length = depth;
    const path = `${prefixes.join('')}${match[1]}`;
    prefixes.push(match[1]!);
    for (const method of match[2]?.split(', ') ?? []) routes.push(`${method} ${path}`);
  }
  return routes.sort();
}

function documentedOperations(document: OpenApiDocument): string[] {
  return Object.entries(document.paths)
    .flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`))
    .sort();
}

function assertErrorBody(body: unknown, statusCode: number): asserts body is ErrorBody {
  const error = body as ErrorBody;
  assert.equal(error.statusCode, statusCode);
  assert.equal(typeof error.error, 'string');
  assert.ok(typeof error.message === 'string' && error.message.length > 0, 'an error must say why');
}

describe('the OpenAPI document', () => {
  let app: FastifyInstance;
  let readiness: () => Promise<Readiness>;
  let document: OpenApiDocument;

  before(async () => {
    app = createHttpServer({
      prometheus: new PrometheusSink(),
      readiness: () => readiness(),
      status: () => ({ version: '0.0.0', uptimeSeconds: 1, config: {}, pools: [] }),
    });
    readiness = async () => ({ ready: true, checks: { neo4j: { ok: true, detail: 'stub' } } });
    await app.ready();
    const response = await app.inject({ method: 'GET', url: OPENAPI_PATH });
    assert.equal(response.statusCode, 200);
    document = response.json<OpenApiDocument>();
  });
  after(() => app.close());

  it('is OpenAPI 3 and lists every route fastify serves, and nothing else', () => {
    assert.match(document.openapi, /^3\./);
    const routes = registeredRoutes(app);
    assert.ok(
      routes.includes('GET /metrics') && routes.includes(`GET ${OPENAPI_PATH}`),
      `sanity: ${routes.join(', ')}`,
    );
    assert.deepEqual(documentedOperations(document), routes);
  });

  it('gives every operation a success response with a body schema, and the error responses', () => {
    for (const [path, operations] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const label = `${method.toUpperCase()} ${path}`;
        for (const status of ['200', '400', '503']) {
          const content = operation.responses[status]?.content;
          assert.ok(content && Object.keys(content).length > 0, `${label} documents no ${status} content`);
          for (const [mediaType, entry] of Object.entries(content)) {
            assert.ok(entry.schema, `${label} ${status} ${mediaType} has no schema`);
          }
        }
      }
    }
  });

  it('documents both exposition formats of /metrics, as served', async () => {
    const documented = Object.keys(document.paths['/metrics']?.get?.responses['200']?.content ?? {});
    const prometheus = await app.inject({ method: 'GET', url: '/metrics' });
    const openMetrics = await app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { accept: 'application/openmetrics-text; version=1.0.0' },
    });
    assert.deepEqual(
      documented.sort(),
      [prometheus.headers['content-type'], openMetrics.headers['content-type']].sort(),
    );
    assert.notEqual(prometheus.headers['content-type'], openMetrics.headers['content-type']);
  });
});

describe('requests the sidecar cannot serve', () => {
  let app: FastifyInstance;
  let readiness: () => Promise<Readiness>;
  let status: () => Record<string, unknown> = () => ({});

  before(async () => {
    app = createHttpServer({
      prometheus: new PrometheusSink(),
      readiness: () => readiness(),
      status: () => status(),
    });
    await app.ready();
  });
  after(() => app.close());

  it('answers a URL that does not decode with 400 and a reason', async () => {
    const response = await app.inject({ method: 'GET', url: '/metrics%' });
    assert.equal(response.statusCode, 400);
    assertErrorBody(response.json(), 400);
  });

  it('answers unknown paths and methods with 404 and a reason', async () => {
    for (const [method, url] of [
      ['GET', '/nope'],
      ['DELETE', '/metrics'],
      ['POST', '/readyz'],
    ] as const) {
      const response = await app.inject({ method, url });
      assert.equal(response.statusCode, 404, `${method} ${url}`);
      assertErrorBody(response.json(), 404);
      assert.match(response.json<ErrorBody>().message, /not found/);
    }
  });

  it('answers a failing handler with 500 and a generic message, not the error text', async () => {
    status = () => {
      throw new Error('internal detail bolt://user:secret@db');
    };
    const response = await app.inject({ method: 'GET', url: '/status' });
    assert.equal(response.statusCode, 500);
    assertErrorBody(response.json(), 500);
    assert.ok(!response.body.includes('secret'), response.body);
  });

  it('answers 503 with the cause when the readiness check itself throws, not 500', async () => {
    readiness = async () => {
      throw new Error('driver closed');
    };
    const response = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(response.statusCode, 503);
    const body = response.json<Readiness>();
    assert.equal(body.ready, false);
    assert.match(body.reason ?? '', /readiness check failed: driver closed/);
  });
});
