/**
 * The real CLI, as a child process: bad configuration must exit 2 naming the field, before
 * anything starts (no port is bound, no connection is made).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runSidecarCli, spawnSidecarCli } from './support/cli.ts';
import { releaseSharedNeo4j, sharedNeo4j } from './support/neo4j.ts';

function yamlFile(content: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'sidecar-cli-')), 'config.yaml');
  writeFileSync(path, content);
  return path;
}

const badConfigurations: Array<{ name: string; args?: string[]; env?: Record<string, string>; field: RegExp }> = [
  { name: 'wrong type', env: { SIDECAR__HTTP__PORT: 'eighty' }, field: /http\.port.*expected number/ },
  { name: 'out of range', env: { SIDECAR__STATSD__SAMPLE_RATE: '1.5' }, field: /statsd\.sampleRate/ },
  { name: 'unknown key', env: { SIDECAR__PROXY__PORTT: '1' }, field: /proxy\.portt.*unknown option/ },
  { name: 'bad enum', env: { SIDECAR__LOG__LEVEL: 'loud' }, field: /log\.level/ },
  { name: 'bad URI', env: { NEO4J_URI: 'http://localhost:7474' }, field: /neo4j\.uri \(from env NEO4J_URI\)/ },
  { name: 'missing URI for run', env: {}, field: /neo4j\.uri: required to run/ },
  {
    name: 'unknown key in the file',
    args: ['--config', yamlFile('http:\n  prot: 1\n')],
    field: /http\.prot.*unknown option/,
  },
  { name: 'missing file', args: ['--config', '/nonexistent/config.yaml'], field: /cannot read config file/ },
];

describe('neo4j-pool-sidecar CLI', () => {
  for (const bad of badConfigurations) {
    it(`exits 2 and names the field for ${bad.name}`, () => {
      const result = runSidecarCli(bad.args ?? [], { NEO4J_PASSWORD: 'never-printed', ...bad.env });
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr, bad.field);
      assert.doesNotMatch(result.stderr + result.stdout, /never-printed/);
    });
  }

  it('check-config prints the effective configuration with the password masked', () => {
    const result = runSidecarCli(['check-config'], { NEO4J_URI: 'bolt://db:7687', NEO4J_PASSWORD: 'hunter2-secret' });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /uri: bolt:\/\/db:7687/);
    assert.match(result.stdout, /password: "\*+"/);
    assert.doesNotMatch(result.stdout, /hunter2-secret/);
  });

  it('rejects an unknown option with usage and exit 2', () => {
    const result = runSidecarCli(['--frobnicate']);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /unknown option --frobnicate/);
  });

  it('prints help and the version', () => {
    assert.match(runSidecarCli(['--help']).stdout, /Usage: neo4j-pool-sidecar/);
    assert.match(runSidecarCli(['--version']).stdout, /^\d+\.\d+\.\d+/);
  });

  it('logs a start-up failure as an error pino keeps whole (type, message, stack), then exits 1', async () => {
    const occupied = createServer();
    await new Promise<void>((resolve) => occupied.listen(0, '127.0.0.1', resolve));
    try {
      const port = (occupied.address() as { port: number }).port;
      const result = runSidecarCli(['run'], {
        NEO4J_URI: 'bolt://127.0.0.1:1',
        SIDECAR__HTTP__PORT: String(port),
        SIDECAR__PROBES__ENABLED: 'false',
        SIDECAR__PROXY__ENABLED: 'false',
        SIDECAR__LOG__PRETTY: 'never',
      });
      assert.equal(result.status, 1, result.stderr);
      const line = result.stdout
        .split('\n')
        .filter((text) => text.startsWith('{'))
        .map((text) => JSON.parse(text) as { msg?: string; err?: { type?: string; message?: string; stack?: string } })
        .find((entry) => entry.msg === 'could not start');
      assert.ok(line, result.stdout);
      assert.equal(line.err?.type, 'Error');
      assert.match(line.err?.message ?? '', /EADDRINUSE/);
      assert.match(line.err?.stack ?? '', /\n\s+at /);
    } finally {
      occupied.close();
    }
  });
});

describe('neo4j-pool-sidecar run', () => {
  after(releaseSharedNeo4j);

  it('serves /metrics against a real Neo4j, then stops cleanly with exit 0 on SIGTERM', async () => {
    const server = await sharedNeo4j();
    const sidecar = await spawnSidecarCli(['run'], { NEO4J_URI: server.uri, NEO4J_PASSWORD: server.password });
    try {
      const healthy = await sidecar.waitForOk('/healthz');
      assert.ok(healthy, `the sidecar never answered /healthz:\n${sidecar.logs()}`);
      const metrics = await (await fetch(`${sidecar.httpUrl}/metrics`)).text();
      assert.match(metrics, /^neo4j_sidecar_build_info\{/m);
      sidecar.child.kill('SIGTERM');
      assert.equal(await sidecar.exited, 0, sidecar.logs());
      assert.match(sidecar.logs(), /"msg":"stopped"/);
      assert.doesNotMatch(sidecar.logs(), new RegExp(server.password));
    } finally {
      await sidecar.stop();
    }
  });
});
