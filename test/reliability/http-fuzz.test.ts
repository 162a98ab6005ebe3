/**
 * The HTTP surface fuzzed from its own OpenAPI document: schemathesis (scripts/tools/schemathesis.ts)
 * runs against a real sidecar on a real Neo4j, with the proxy and the probes on and traffic through
 * the proxy so /metrics and /status carry real content. It must find no 5xx and no response the
 * document does not describe (status, content type, body schema), including for the methods and
 * inputs no operation declares. The not-ready 503 of /readyz is fuzzed too, from a server whose
 * readiness fails.
 *
 * A fuzzer that tested nothing would pass too, so its reports are read back: every documented
 * operation must have been exercised, with each check applied to a real 200; and the same run
 * against a deliberately wrong document must fail, which shows the checks can fail at all.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import neo4j from 'neo4j-driver';
import { ensureSchemathesis } from '../../scripts/tools/schemathesis.ts';
import { isBoltProxyComponent } from '../../src/proxy/index.ts';
import { createHttpServer, OPENAPI_PATH } from '../../src/server/http.ts';
import type { RunningSidecar } from '../../src/server/index.ts';
import { eventually } from '../support/eventually.ts';
import { releaseSharedNeo4j, sharedNeo4j } from '../support/neo4j.ts';
import { startTestSidecar } from '../support/sidecar.ts';

const CHECKS = [
  'not_a_server_error',
  'status_code_conformance',
  'content_type_conformance',
  'response_schema_conformance',
] as const;

/**
 * Cases per operation in the fuzzing phase: enough to vary the Accept header, small enough for well
 * under a minute. HTTP_FUZZ_EXAMPLES runs a longer hunt; HTTP_FUZZ_SEED replays a run.
 */
const MAX_EXAMPLES = Number(process.env.HTTP_FUZZ_EXAMPLES ?? 25);
// Our own seed rather than schemathesis's: its 128-bit seed does not survive JSON.parse, and a failure
// is only useful if the run can be repeated.
const SEED = process.env.HTTP_FUZZ_SEED ?? String(randomInt(2 ** 31));

interface OpenApiDocument {
  paths: Record<string, Record<string, { responses: Record<string, Record<string, unknown>> }>>;
}

interface Interaction {
  request: { method: string; uri: string };
  response?: { status_code: number };
}

interface ScenarioFinished {
  phase: string;
  recorder: {
    label: string;
    interactions?: Record<string, Interaction>;
    checks?: Record<string, Array<{ name: string; status: string }>>;
  };
}

interface JsonReport {
  exit_code: number;
  operations: { total: number; tested: number; errored: number };
  test_cases: { generated: number; with_failures: number; errored: number };
  failures: Array<Record<string, unknown>>;
  errors: unknown[];
}

interface RunResult {
  code: number;
  output: string;
  report: JsonReport;
  scenarios: ScenarioFinished[];
}

let sidecar: RunningSidecar;
let base: string;
let schemathesis: string;
let workDir: string;

/**
 * /readyz answering 503 is its documented not-ready answer, not a server error; every other
 * operation keeps schemathesis's default (no 5xx at all).
 */
const SCHEMATHESIS_CONFIG = `
[[operations]]
include-path = "/readyz"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]
`;

async function runSchemathesis(
  schemaFile: string,
  extraArgs: readonly string[],
  url: string = base,
): Promise<RunResult> {
  const reportDir = await mkdtemp(join(workDir, 'report-'));
  const configFile = join(workDir, 'schemathesis.toml');
  await writeFile(configFile, SCHEMATHESIS_CONFIG);
  const args = [
    '--config-file',
    configFile,
    'run',
    schemaFile,
    '--url',
    url,
    '--checks',
    CHECKS.join(','),
    // Examples and coverage send the boundary and negative inputs, including every method no
    // operation declares; fuzzing sends generated ones. Stateful needs links, which this API has none of.
    '--phases',
    'examples,coverage,fuzzing',
    '--mode',
    'all',
    '--max-examples',
    String(MAX_EXAMPLES),
    '--seed',
    SEED,
    // One worker: the machine is shared, and the sidecar's answers do not depend on concurrency here.
    '--workers',
    '1',
    '--request-timeout',
    '20',
    '--generation-database',
    'none',
    '--no-color',
    '--report',
    'json,ndjson',
    '--report-dir',
    reportDir,
    ...extraArgs,
  ];
  const child = spawn(schemathesis, args, { cwd: workDir, env: { ...process.env, NO_COLOR: '1' } });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const code = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (exitCode) => resolve(exitCode ?? 1));
  });
  const files = await readdir(reportDir);
  const jsonFile = files.find((file) => file.endsWith('.json'));
  const ndjsonFile = files.find((file) => file.endsWith('.ndjson'));
  assert.ok(jsonFile && ndjsonFile, `schemathesis wrote no reports (exit ${code}):\n${output.slice(-4000)}`);
  const report = JSON.parse(await readFile(join(reportDir, jsonFile), 'utf8')) as JsonReport;
  const scenarios = (await readFile(join(reportDir, ndjsonFile), 'utf8'))
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .flatMap((event) => ('ScenarioFinished' in event ? [event.ScenarioFinished as ScenarioFinished] : []));
  return { code, output, report, scenarios };
}

const POLL_30S = { timeoutMs: 30_000, intervalMs: 200 };

function operationsOf(document: OpenApiDocument): string[] {
  return Object.entries(document.paths)
    .flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`))
    .sort();
}

async function fetchDocument(): Promise<OpenApiDocument> {
  const response = await fetch(`${base}${OPENAPI_PATH}`);
  assert.equal(response.status, 200);
  return (await response.json()) as OpenApiDocument;
}

before(async () => {
  const [server, executable] = await Promise.all([sharedNeo4j(), ensureSchemathesis()]);
  schemathesis = executable;
  workDir = await mkdtemp(join(tmpdir(), 'neo4j-pool-sidecar-http-fuzz-'));
  sidecar = await startTestSidecar({
    neo4j: server,
    env: {
      // Probes often enough to have results before the fuzzer starts, with a timeout generous enough
      // that a busy machine does not fail one and turn /readyz 503 mid-run.
      SIDECAR__PROBES__SCHEDULE: '*/5 * * * * *',
      SIDECAR__PROBES__TIMEOUT_MS: '2000',
      SIDECAR__PROBES__JITTER_MS: '0',
      // /readyz must answer 200 at least once during the run (asserted below); a probe slowed past its
      // timeout by the shared machine must not take that away. The not-ready answer is fuzzed separately.
      SIDECAR__PROBES__ACQUISITION__GATES_READINESS: 'false',
      SIDECAR__PROBES__ROUND_TRIP__GATES_READINESS: 'false',
    },
  });
  base = `http://127.0.0.1:${sidecar.httpAddress.port}`;

  // Traffic through the proxy, a failing query among it, so the fuzzer validates /metrics and /status
  // with query, error and connection series in them rather than an empty sidecar.
  const proxy = sidecar.components.find(isBoltProxyComponent)?.proxy;
  assert.ok(proxy, 'the proxy component is running');
  const worker = neo4j.driver(`bolt://${proxy.address}`, neo4j.auth.basic(server.username, server.password), {
    logging: { level: 'error', logger: () => {} },
  });
  try {
    for (let index = 0; index < 5; index++) await worker.executeQuery('RETURN $index AS index', { index });
    await assert.rejects(worker.executeQuery('RETURN nonsense('));
  } finally {
    await worker.close();
  }
  await eventually(async () => assert.equal((await fetch(`${base}/readyz`)).status, 200, '/readyz'), POLL_30S);
  await eventually(async () => {
    const status = (await (await fetch(`${base}/status`)).json()) as Record<string, unknown>;
    assert.ok(status.probes !== undefined && status.proxy !== undefined, '/status with the probes and proxy sections');
  }, POLL_30S);
});

after(async () => {
  await sidecar?.stop();
  await releaseSharedNeo4j();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe('the HTTP API fuzzed from its OpenAPI document', () => {
  it('answers every generated request without a 5xx and only as documented', async (t) => {
    const document = await fetchDocument();
    // The document is fuzzed from a file with --url rather than from its URL: schemathesis leaves out
    // the operation that serves the schema it loaded, and GET /openapi.json deserves fuzzing too.
    const schemaFile = join(workDir, 'openapi.json');
    await writeFile(schemaFile, JSON.stringify(document));
    const run = await runSchemathesis(schemaFile, []);
    const summary = `HTTP_FUZZ_SEED=${SEED}; output:\n${run.output.slice(-6000)}`;
    assert.deepEqual(run.report.failures, [], summary);
    assert.deepEqual(run.report.errors, [], summary);
    assert.equal(run.code, 0, summary);

    const documented = operationsOf(document);
    assert.ok(documented.length >= 10, `sanity: ${documented.join(', ')}`);
    assert.equal(run.report.operations.total, documented.length);
    assert.equal(run.report.operations.tested, documented.length);
    assert.equal(run.report.operations.errored, 0);

    // Per operation and phase: requests that got a response, their statuses, and the checks applied.
    const seen = new Map<string, { statuses: number[]; undeclaredMethods: number[]; checks: Set<string> }>();
    for (const scenario of run.scenarios) {
      const key = `${scenario.recorder.label} ${scenario.phase}`;
      const entry = seen.get(key) ?? { statuses: [], undeclaredMethods: [], checks: new Set<string>() };
      const method = scenario.recorder.label.split(' ')[0];
      for (const interaction of Object.values(scenario.recorder.interactions ?? {})) {
        if (!interaction.response) continue;
        if (interaction.request.method === method) entry.statuses.push(interaction.response.status_code);
        else entry.undeclaredMethods.push(interaction.response.status_code);
      }
      for (const results of Object.values(scenario.recorder.checks ?? {})) {
        for (const result of results) if (result.status === 'success') entry.checks.add(result.name);
      }
      seen.set(key, entry);
    }

    let cases = 0;
    for (const operation of documented) {
      for (const phase of ['coverage', 'fuzzing']) {
        const entry = seen.get(`${operation} ${phase}`);
        assert.ok(entry && entry.statuses.length > 0, `${operation} got no response in the ${phase} phase`);
        assert.ok(entry.statuses.includes(200), `${operation} never answered 200 in ${phase}: ${entry.statuses}`);
        assert.deepEqual([...entry.checks].sort(), [...CHECKS].sort(), `${operation} ${phase}: checks applied`);
        cases += entry.statuses.length + entry.undeclaredMethods.length;
      }
      // The coverage phase also sends the methods the path does not declare: those must be refused (4xx).
      const undeclared = seen.get(`${operation} coverage`)?.undeclaredMethods ?? [];
      if (operation.startsWith('GET ')) {
        assert.ok(undeclared.length > 0, `${operation}: no undeclared method was tried`);
        assert.ok(
          undeclared.every((status) => status >= 400 && status < 500),
          `${operation}: undeclared methods got ${undeclared}`,
        );
      }
    }
    t.diagnostic(
      `schemathesis: ${documented.length} operations, ${run.report.test_cases.generated} generated cases, ` +
        `${cases} requests answered, HTTP_FUZZ_SEED=${SEED}`,
    );
  });

  it('answers not-ready with the documented 503 body', async () => {
    // The same HTTP server the sidecar builds, given a readiness that fails the way the sidecar's does
    // when Neo4j is down: stopping the shared Neo4j is not an option while other test files use it.
    const notReady = createHttpServer({
      prometheus: sidecar.prometheus,
      readiness: async () => ({
        ready: false,
        reason: 'neo4j: Neo4j not reachable: connection refused',
        checks: { neo4j: { ok: false, detail: 'Neo4j not reachable: connection refused' }, proxy: { ok: true } },
      }),
      status: () => ({}),
    });
    await notReady.listen({ host: '127.0.0.1', port: 0 });
    try {
      const address = notReady.server.address() as AddressInfo;
      const schemaFile = join(workDir, 'openapi-not-ready.json');
      await writeFile(schemaFile, JSON.stringify(await fetchDocument()));
      const run = await runSchemathesis(
        schemaFile,
        ['--include-path', '/readyz', '--max-examples', '5'],
        `http://127.0.0.1:${address.port}`,
      );
      assert.equal(run.code, 0, `HTTP_FUZZ_SEED=${SEED}; output:\n${run.output.slice(-6000)}`);
      const statuses = run.scenarios.flatMap((scenario) =>
        Object.values(scenario.recorder.interactions ?? {})
          .filter((interaction) => interaction.request.method === scenario.recorder.label.split(' ')[0])
          .map((interaction) => interaction.response?.status_code),
      );
      assert.ok(statuses.length > 0 && statuses.every((status) => status === 503), `statuses: ${statuses}`);
    } finally {
      await notReady.close();
    }
  });

  it('fails against a document the server does not match, so the checks above can fail', async () => {
    const document = await fetchDocument();
    const healthz = document.paths['/healthz']?.get?.responses['200'] as {
      content: Record<string, { schema: { properties: { status: { enum: string[] } } } }>;
    };
    const schema = Object.values(healthz.content)[0]?.schema;
    assert.ok(schema, 'sanity: /healthz documents a 200 body');
    schema.properties.status.enum = ['degraded'];
    const schemaFile = join(workDir, 'openapi-wrong.json');
    await writeFile(schemaFile, JSON.stringify(document));
    const run = await runSchemathesis(schemaFile, [
      '--include-path',
      '/healthz',
      '--include-method',
      'GET',
      // The last --max-examples wins: one wrong body is enough to show the check bites.
      '--max-examples',
      '5',
    ]);
    assert.notEqual(run.code, 0, 'schemathesis passed a /healthz body that breaks the document');
    assert.ok(run.report.failures.length > 0, run.output.slice(-4000));
    assert.match(JSON.stringify(run.report.failures), /schema/i);
  });
});
