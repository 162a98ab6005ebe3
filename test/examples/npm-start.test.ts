/**
 * `npm start` as a new user runs it: the real script, its output read back, and the copy-paste command
 * it prints run in a shell from the repo root. The command must answer through the Bolt proxy (the
 * proxy's query counter moves by exactly its one query) with only what the banner printed.
 *
 * DEMO_LOAD_SECONDS=0 turns the demo's synthetic load off, so every query the proxy counts is the
 * printed command's; the HTTP and proxy ports are set to 0 so the run cannot collide with anything
 * else on the machine. Everything else is the default. Ctrl-C (SIGINT to the whole process group, as a
 * terminal sends it) must stop the sidecar before the demo Neo4j, without a warning or a stack trace,
 * and remove the demo server's folder; once with the load off, once with it on.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DEFAULT_NEO4J_VERSION, repoRoot } from '../../scripts/neo4j/local-neo4j.ts';
import { collectOutput } from '../support/cli.ts';
import { eventually } from '../support/eventually.ts';
import { releaseSharedNeo4j, sharedNeo4j } from '../support/neo4j.ts';
import { parseExposition } from '../support/prometheus-text.ts';

after(() => releaseSharedNeo4j());

interface StartedDemo {
  child: ChildProcess;
  output: () => string;
  /** Ctrl-C as a terminal sends it (SIGINT to the whole process group); resolves once all of it has ended. */
  interrupt(): Promise<void>;
}

function npmStart(env: Record<string, string>): StartedDemo {
  const child = spawn('npm', ['start'], {
    cwd: repoRoot,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      ...(process.env.JAVA_HOME ? { JAVA_HOME: process.env.JAVA_HOME } : {}),
      SIDECAR__HTTP__PORT: '0',
      SIDECAR__PROXY__PORT: '0',
      SIDECAR__LOG__PRETTY: 'never',
      DEMO_LOAD_SECONDS: '0',
      ...env,
    },
  });
  const output = collectOutput(child);
  // npm itself dies of the SIGINT at once; the script behind it is done when the last holder of the
  // output pipes (the script, the demo Neo4j's leash) has closed them.
  const finished = new Promise<void>((resolve) => child.stdout?.once('close', () => resolve()));
  let interrupted = false;
  return {
    child,
    output,
    async interrupt() {
      if (!interrupted) process.kill(-child.pid!, 'SIGINT');
      interrupted = true;
      const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 60_000);
      await finished;
      clearTimeout(timer);
    },
  };
}

async function waitForBanner(demo: StartedDemo): Promise<string> {
  const deadline = Date.now() + 240_000;
  while (Date.now() < deadline && demo.child.exitCode === null && !/\/readyz\n/.test(demo.output())) {
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  assert.match(demo.output(), /\/readyz\n/, `npm start printed no URLs:\n${demo.output()}`);
  return demo.output();
}

/** The one line of the banner that is a command to paste. */
function printedCommand(output: string): string {
  const commands = output.split('\n').filter((line) => /^\s+node -e "/.test(line));
  assert.equal(commands.length, 1, `one copy-paste command in:\n${output}`);
  return commands[0]!.trim();
}

async function proxyQueries(metricsUrl: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  return parseExposition(text)
    .samples.filter(
      (sample) => sample.name === 'neo4j_query_duration_seconds_count' && sample.labels.source === 'proxy',
    )
    .reduce((sum, sample) => sum + sample.value, 0);
}

/** The printed command in a shell from the repo root, with nothing but PATH (and `env`) set. */
function runInShell(command: string, env: Record<string, string> = {}) {
  return spawnSync('sh', ['-c', command], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

/** What the demo printed from its "shutting down" line on: the sidecar's and the demo's own shutdown. */
function afterInterrupt(output: string): string {
  const start = output.indexOf('"msg":"shutting down"');
  assert.ok(start >= 0, `no shutdown logged:\n${output.slice(-4000)}`);
  return output.slice(output.lastIndexOf('\n', start) + 1);
}

/**
 * Ctrl-C must end in a clean stop with no sign of a vanished Neo4j: no warning from the driver or about
 * Neo4j being unavailable, no stack trace. (A probe timing out on a busy machine is not that.)
 */
function assertQuietShutdown(output: string): void {
  const shutdown = afterInterrupt(output);
  assert.match(shutdown, /"msg":"stopped"/, `the sidecar did not stop cleanly on Ctrl-C:\n${shutdown}`);
  const outageWarnings = shutdown
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => ({ line, parsed: JSON.parse(line) as { level: number; component?: string } }))
    .filter(({ parsed }) => parsed.level >= 40)
    .filter(({ line, parsed }) => parsed.component === 'driver' || /unavailable|unreachable/i.test(line));
  assert.deepEqual(outageWarnings, [], `no warning of an outage after Ctrl-C:\n${shutdown}`);
  assert.doesNotMatch(shutdown, /ServiceUnavailable|ECONNREFUSED/);
  assert.doesNotMatch(shutdown, /Stacktrace|^\s+at |\\n\s+at /m, 'no stack trace after Ctrl-C');
}

function assertDemoNeo4jRemoved(output: string): void {
  const demoBoltPort = /local demo Neo4j at bolt:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1];
  assert.ok(demoBoltPort, 'the banner names the demo server');
  assert.equal(
    existsSync(join(repoRoot, '.cache', 'neo4j', 'instances', `demo-${DEFAULT_NEO4J_VERSION}-${demoBoltPort}`)),
    false,
    'Ctrl-C removed the demo Neo4j',
  );
}

describe('npm start', () => {
  it('with no NEO4J_URI prints the proxy, the demo login and a command that queries through the proxy', async () => {
    const demo = npmStart({});
    try {
      const output = await waitForBanner(demo);
      const proxy = /Bolt proxy\s+bolt:\/\/(127\.0\.0\.1:\d+)/.exec(output)?.[1];
      assert.ok(proxy, `the banner names the proxy's bolt:// address:\n${output}`);
      assert.match(output, /login\s+user neo4j, password local-test-password/);
      const metricsUrl = /metrics\s+(http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(output)?.[1];
      assert.ok(metricsUrl, 'the banner names the metrics URL');
      assert.match(output, /status\s+http:\/\/127\.0\.0\.1:\d+\/status/);
      assert.match(output, /readiness\s+http:\/\/127\.0\.0\.1:\d+\/readyz/);
      const command = printedCommand(output);
      assert.ok(command.includes(`bolt://${proxy}`), `the command goes to the proxy: ${command}`);

      const before = await proxyQueries(metricsUrl);
      const result = runInShell(command);
      assert.equal(result.status, 0, `the printed command failed:\n${result.stdout}\n${result.stderr}`);
      assert.equal(result.stdout.trim(), `RETURN 1 -> 1 via ${proxy}`);
      assert.equal(await proxyQueries(metricsUrl), before + 1, 'the proxy counted the command its one query');

      await demo.interrupt();
      assertQuietShutdown(demo.output());
      assertDemoNeo4jRemoved(output);
    } finally {
      await demo.interrupt();
    }
  });

  it('on Ctrl-C under the demo load stops the sidecar before the demo Neo4j: no warning, no stack trace', async () => {
    // The demo load on (through the proxy and an instrumented driver), as a new user runs it.
    const demo = npmStart({ DEMO_LOAD_SECONDS: '3600' });
    try {
      const output = await waitForBanner(demo);
      const metricsUrl = /metrics\s+(http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(output)?.[1];
      assert.ok(metricsUrl, 'the banner names the metrics URL');
      // Ctrl-C while queries are under way, through the proxy and direct.
      await eventually(async () => assert.ok((await proxyQueries(metricsUrl)) > 0, 'the demo load runs'), 30_000);
      await demo.interrupt();
      assertQuietShutdown(demo.output());
      assertDemoNeo4jRemoved(output);
    } finally {
      await demo.interrupt();
    }
  });

  it('with NEO4J_URI refers to the password instead of printing it, and its command works with it', async () => {
    const server = await sharedNeo4j();
    const demo = npmStart({ NEO4J_URI: server.uri, NEO4J_PASSWORD: server.password });
    try {
      const output = await waitForBanner(demo);
      assert.ok(!output.includes(server.password), 'the password of a real server is never printed');
      assert.match(output, /login\s+user neo4j and your Neo4j password \(NEO4J_PASSWORD\)/);
      const proxy = /Bolt proxy\s+bolt:\/\/(127\.0\.0\.1:\d+)/.exec(output)?.[1];
      const metricsUrl = /metrics\s+(http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(output)?.[1];
      assert.ok(proxy && metricsUrl, `the banner names the proxy and the metrics URL:\n${output}`);
      const command = printedCommand(output);

      const before = await proxyQueries(metricsUrl);
      const result = runInShell(command, { NEO4J_PASSWORD: server.password });
      assert.equal(result.status, 0, `the printed command failed:\n${result.stdout}\n${result.stderr}`);
      assert.equal(result.stdout.trim(), `RETURN 1 -> 1 via ${proxy}`);
      assert.equal(await proxyQueries(metricsUrl), before + 1, 'the proxy counted the command its one query');
    } finally {
      await demo.interrupt();
    }
  });
});
