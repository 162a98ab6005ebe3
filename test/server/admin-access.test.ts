/**
 * Who may call what, tried like an attacker on the pod network would: the real CLI with the chart's
 * bind-all HTTP address, requests from a second host (a network namespace of the test's own, so the
 * sidecar sees a real non-loopback peer), and the `queries` command from the sidecar's own environment.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import neo4j from 'neo4j-driver';
import { AdminAccess, isLoopback } from '../../src/server/admin-access.ts';
import { runSidecarCli, type SidecarCli, spawnSidecarCli } from '../support/cli.ts';
import { type ClientHost, createClientHost } from '../support/client-host.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';

const TOKEN = 'a-long-enough-admin-token-0123456789';
/** Every endpoint of access level admin. */
const ADMIN_POSTS = ['/queries/reset', '/proxy/pause?drainTimeoutSeconds=0', '/proxy/resume', '/proxy/reconnect'];

let server: TestNeo4j;
let host: ClientHost;
let folder: string;

before(async () => {
  server = await sharedNeo4j();
  host = createClientHost();
  folder = mkdtempSync(join(tmpdir(), 'admin-access-'));
});
after(async () => {
  host?.remove();
  rmSync(folder, { recursive: true, force: true });
  await releaseSharedNeo4j();
});

/** Status code and message of a request made from the client host. */
function fromClientHost(url: string, init: { method?: string; token?: string } = {}): { status: number; body: string } {
  const headers = init.token === undefined ? {} : { authorization: `Bearer ${init.token}` };
  const script = `fetch(${JSON.stringify(url)}, { method: ${JSON.stringify(init.method ?? 'GET')}, headers: ${JSON.stringify(headers)} })
    .then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.text() })))
    .catch((e) => { console.error(e); process.exit(1); });`;
  return JSON.parse(host.node(script)) as { status: number; body: string };
}

async function startSidecar(env: Record<string, string>): Promise<SidecarCli> {
  const sidecar = await spawnSidecarCli(['run'], {
    NEO4J_URI: server.uri,
    NEO4J_PASSWORD: server.password,
    SIDECAR__HTTP__HOST: '0.0.0.0',
    ...env,
  });
  assert.ok(await sidecar.waitForOk('/healthz'), `the sidecar did not start:\n${sidecar.logs()}`);
  return sidecar;
}

describe('admin access without a token (the default)', { timeout: 3 * 60_000 }, () => {
  let sidecar: SidecarCli;
  before(async () => {
    sidecar = await startSidecar({});
  });
  after(() => sidecar?.stop());

  it('refuses POST /queries/reset and the proxy verbs from another host with 403 and a reason', () => {
    const url = `http://${host.hostAddress}:${sidecar.httpPort}`;
    for (const path of ADMIN_POSTS) {
      const refused = fromClientHost(`${url}${path}`, { method: 'POST' });
      assert.equal(refused.status, 403, `${path}: ${refused.body}`);
      assert.match(JSON.parse(refused.body).message, /loopback.*http\.adminTokenFile/);
    }
    // Refused before anything happened: the pool was never paused.
    assert.equal(JSON.parse(fromClientHost(`${url}/proxy/pools`).body).paused, false);
  });

  it('keeps /metrics, /healthz, /readyz, /status, /queries and the proxy views open to the other host', () => {
    const url = `http://${host.hostAddress}:${sidecar.httpPort}`;
    for (const path of ['/metrics', '/healthz', '/status', '/queries', '/proxy/pools', '/proxy/clients']) {
      assert.equal(fromClientHost(`${url}${path}`).status, 200, path);
    }
    assert.notEqual(fromClientHost(`${url}/readyz`).status, 401);
  });

  it('takes POST /queries/reset on loopback', async () => {
    const response = await fetch(`${sidecar.httpUrl}/queries/reset`, { method: 'POST' });
    assert.equal(response.status, 200);
  });
});

describe('admin access with http.adminTokenFile', { timeout: 3 * 60_000 }, () => {
  let sidecar: SidecarCli;
  let tokenFile: string;
  before(async () => {
    tokenFile = join(folder, 'admin-token');
    writeFileSync(tokenFile, `${TOKEN}\n`);
    sidecar = await startSidecar({ SIDECAR__HTTP__ADMIN_TOKEN_FILE: tokenFile });
  });
  after(() => sidecar?.stop());

  it('answers 401 to a missing or wrong token, from anywhere, for operator and admin endpoints', async () => {
    const url = `http://${host.hostAddress}:${sidecar.httpPort}`;
    for (const [path, method] of [
      ...ADMIN_POSTS.map((path) => [path, 'POST'] as const),
      ['/queries', 'GET'],
      ['/status', 'GET'],
      ['/proxy/pools', 'GET'],
      ['/proxy/clients', 'GET'],
    ] as const) {
      assert.equal(fromClientHost(`${url}${path}`, { method }).status, 401, `${method} ${path} without a token`);
      const wrong = fromClientHost(`${url}${path}`, { method, token: `${TOKEN.slice(0, -1)}x` });
      assert.equal(wrong.status, 401, `${method} ${path} with a wrong token`);
      const local = await fetch(`${sidecar.httpUrl}${path}`, { method });
      assert.equal(local.status, 401, `${method} ${path} from loopback without a token`);
      assert.match(local.headers.get('www-authenticate') ?? '', /^Bearer/);
    }
  });

  it('serves the right token from another host, and never guards /metrics or the probes', () => {
    const url = `http://${host.hostAddress}:${sidecar.httpPort}`;
    assert.equal(fromClientHost(`${url}/queries/reset`, { method: 'POST', token: TOKEN }).status, 200);
    assert.equal(fromClientHost(`${url}/queries`, { token: TOKEN }).status, 200);
    for (const path of ['/metrics', '/healthz', '/openapi.json']) {
      assert.equal(fromClientHost(`${url}${path}`).status, 200, path);
    }
  });

  it("lets the proxy verbs in with the token, from the other host and from the CLI in the sidecar's environment", () => {
    const url = `http://${host.hostAddress}:${sidecar.httpPort}`;
    const paused = fromClientHost(`${url}/proxy/pause?drainTimeoutSeconds=5`, { method: 'POST', token: TOKEN });
    assert.equal(paused.status, 200, paused.body);
    assert.equal(JSON.parse(paused.body).drained, true);
    const env = { SIDECAR__HTTP__PORT: String(sidecar.httpPort), SIDECAR__HTTP__ADMIN_TOKEN_FILE: tokenFile };
    const resume = runSidecarCli(['resume'], env);
    assert.equal(resume.status, 0, resume.stderr);
    assert.match(resume.stdout, /resumed after/);
    const without = runSidecarCli(['pause'], { SIDECAR__HTTP__PORT: String(sidecar.httpPort) });
    assert.equal(without.status, 1);
    assert.match(without.stderr, /pause failed: .*401/);
  });

  it('lets `neo4j-pool-sidecar queries` in with the environment the sidecar was started with', async () => {
    const driver = neo4j.driver(`bolt://127.0.0.1:${sidecar.proxyPort}`, neo4j.auth.basic('neo4j', server.password));
    try {
      await driver.executeQuery("RETURN 'admin-access' AS marker");
    } finally {
      await driver.close();
    }
    const env = { SIDECAR__HTTP__PORT: String(sidecar.httpPort), SIDECAR__HTTP__ADMIN_TOKEN_FILE: tokenFile };
    const result = runSidecarCli(['queries', '--limit', '50'], env);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /RETURN \? AS marker/);
    const without = runSidecarCli(['queries'], { SIDECAR__HTTP__PORT: String(sidecar.httpPort) });
    assert.equal(without.status, 1);
    assert.match(without.stderr, /401/);
  });

  it('takes a rotated token without a restart', async () => {
    const rotated = 'the-rotated-admin-token-9876543210';
    writeFileSync(tokenFile, rotated);
    const old = await fetch(`${sidecar.httpUrl}/queries`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(old.status, 401);
    const fresh = await fetch(`${sidecar.httpUrl}/queries`, { headers: { authorization: `Bearer ${rotated}` } });
    assert.equal(fresh.status, 200);
  });
});

describe('a bad http.adminTokenFile', () => {
  it('stops the sidecar before anything starts, naming the option', () => {
    const short = join(folder, 'short-token');
    writeFileSync(short, 'short');
    for (const [file, reason] of [
      [short, /fewer than 16 characters/],
      [join(folder, 'missing'), /cannot read the admin token file: ENOENT/],
    ] as const) {
      const result = runSidecarCli(['check-config'], {
        NEO4J_URI: 'bolt://127.0.0.1:1',
        SIDECAR__HTTP__ADMIN_TOKEN_FILE: file,
      });
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr, /http\.adminTokenFile/);
      assert.match(result.stderr, reason);
    }
  });

  it('shows the file in check-config, never the token', () => {
    const file = join(folder, 'shown-token');
    writeFileSync(file, TOKEN);
    const result = runSidecarCli(['check-config'], {
      NEO4J_URI: 'bolt://127.0.0.1:1',
      SIDECAR__HTTP__ADMIN_TOKEN_FILE: file,
    });
    assert.equal(result.status, 0, result.stderr);
    assert.ok(result.stdout.includes(file));
    assert.ok(!result.stdout.includes(TOKEN) && !result.stderr.includes(TOKEN));
  });
});

describe('AdminAccess', () => {
  it('tells loopback peers apart, IPv4-mapped ones included', () => {
    for (const address of ['127.0.0.1', '127.3.2.1', '::1', '::ffff:127.0.0.1'])
      assert.ok(isLoopback(address), address);
    for (const address of ['10.0.0.1', '::ffff:10.0.0.1', '192.0.2.2', 'fd00::2', '1127.0.0.1', undefined]) {
      assert.ok(!isLoopback(address), String(address));
    }
  });

  it('never lets an open route be refused, nor an admin route from outside without a token', () => {
    const access = new AdminAccess(null);
    assert.deepEqual(access.decide('open', '10.0.0.1', undefined), { allowed: true });
    assert.deepEqual(access.decide('operator', '10.0.0.1', undefined), { allowed: true });
    assert.equal(access.decide('admin', '10.0.0.1', `Bearer ${TOKEN}`).allowed, false);
    assert.deepEqual(access.decide('admin', '127.0.0.1', undefined), { allowed: true });
  });
});
