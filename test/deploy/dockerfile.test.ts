/**
 * The Dockerfile's own steps, run without a container engine: a clean copy of the repository is the
 * build context, each stage's WORKDIR/COPY/ENV/RUN is carried out as written (parsed from the
 * Dockerfile, so the test cannot drift from it), and the runtime stage's ENTRYPOINT + CMD starts the
 * sidecar against the test Neo4j as the image's non-root USER. Then /healthz must answer, the
 * HEALTHCHECK command must pass, and SIGTERM must stop it cleanly.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, repoRoot } from '../../scripts/neo4j/local-neo4j.ts';
import { ensureDebianPackages } from '../../scripts/tools/debian.ts';
import { collectOutput, pollHttp } from '../support/cli.ts';
import { releaseSharedNeo4j, sharedNeo4j, type TestNeo4j } from '../support/neo4j.ts';
import { cleanCopy } from './support/clean-copy.ts';
import { lastOf, parseDockerfile } from './support/dockerfile.ts';
import { type EmulatedStage, ImageEmulator, inRoot } from './support/image-emulator.ts';

const dockerfileText = await readFile(join(repoRoot, 'Dockerfile'), 'utf8');
const dockerfile = parseDockerfile(dockerfileText);
const finalStage = dockerfile.stages.at(-1)!;

describe('Dockerfile (static)', () => {
  it('is multi-stage and the runtime stage copies only build output and production dependencies', () => {
    assert.ok(dockerfile.stages.length >= 2, 'a build stage and a runtime stage');
    const copies = finalStage.instructions.filter((i) => i.kind === 'COPY');
    for (const copy of copies) {
      if (copy.kind !== 'COPY') continue;
      assert.ok(
        copy.from !== undefined || copy.sources.every((source) => source === 'package.json'),
        `the runtime stage copies ${copy.sources.join(', ')} from the context; only package.json may come from there`,
      );
    }
    const runs = finalStage.instructions.filter((i) => i.kind === 'RUN');
    assert.ok(
      runs.every((run) => run.kind === 'RUN' && !/\bnpm (ci|install)\b/.test(run.command)),
      'no npm install in the runtime stage',
    );
  });

  it('runs as a numeric non-root user, exposes the metrics and Bolt ports and checks /healthz', () => {
    const user = lastOf(finalStage, 'USER')?.user ?? '';
    const match = /^(\d+)(?::(\d+))?$/.exec(user);
    assert.ok(match, `USER must be numeric uid:gid so runAsNonRoot can verify it, got "${user}"`);
    assert.notEqual(Number(match[1]), 0);
    const exposed = finalStage.instructions.flatMap((i) => (i.kind === 'EXPOSE' ? i.ports : []));
    assert.ok(exposed.includes('9464'), 'metrics port');
    assert.ok(exposed.includes('7687'), 'Bolt proxy port');
    const healthcheck = lastOf(finalStage, 'HEALTHCHECK');
    assert.ok(healthcheck?.command.join(' ').includes('/healthz'), 'HEALTHCHECK requests /healthz');
  });

  it('starts Node under an init that forwards signals, in exec form', () => {
    const entrypoint = lastOf(finalStage, 'ENTRYPOINT')?.command ?? [];
    assert.match(entrypoint[0] ?? '', /\/(tini|dumb-init)$/);
    assert.ok(entrypoint.includes('node'), 'node is started by the init, not through a shell');
  });
});

describe('Dockerfile build and start in a clean copy', { timeout: 20 * 60_000 }, () => {
  let server: TestNeo4j;
  let context: string;
  let emulator: ImageEmulator;
  let runtime: EmulatedStage;

  before(async () => {
    // The image's init comes from a Debian package; the same package on the host lets the test start
    // the ENTRYPOINT exactly as written, so signal forwarding through it is what gets tested.
    await ensureDebianPackages(['tini'], ['/usr/bin/tini']);
    server = await sharedNeo4j();
    context = await cleanCopy(repoRoot);
    // The runtime user must be able to reach the emulated image root, as it can in a real image.
    await chmod(context, 0o755);
    emulator = await ImageEmulator.create(context, join(context, '.image'), () => {});
    runtime = await emulator.buildStage(finalStage.name);
    await chmod(join(context, '.image'), 0o755);
  });

  after(async () => {
    await releaseSharedNeo4j();
    if (context) await rm(context, { recursive: true, force: true });
  });

  it('builds dist/cli.js and leaves dev dependencies out of the runtime stage', () => {
    const app = inRoot(runtime.root, runtime.workdir);
    assert.ok(existsSync(join(app, 'dist', 'cli.js')), 'dist/cli.js');
    assert.ok(existsSync(join(app, 'node_modules', 'neo4j-driver')), 'production dependency present');
    for (const dev of ['typescript', 'tsx', '@biomejs/biome']) {
      assert.ok(!existsSync(join(app, 'node_modules', dev)), `${dev} must not be in the runtime image`);
    }
    assert.ok(!existsSync(join(app, 'src')), 'no TypeScript sources in the runtime image');
  });

  it('starts as the image does, answers /healthz, passes its HEALTHCHECK, and stops on SIGTERM', async (t) => {
    const { droppedInit } = emulator.command(runtime);
    if (droppedInit)
      t.diagnostic(`${droppedInit} is an OS package of the image and not on this host; started node directly`);
    for (const skipped of runtime.skipped) t.diagnostic(`skipped RUN (${skipped.reason}): ${skipped.command}`);

    const httpPort = await freePort();
    const env = {
      NEO4J_URI: server.uri,
      NEO4J_USERNAME: server.username,
      NEO4J_PASSWORD: server.password,
      SIDECAR__HTTP__PORT: String(httpPort),
      // The image listens on 0.0.0.0 for Prometheus; the test keeps to loopback.
      SIDECAR__HTTP__HOST: '127.0.0.1',
      SIDECAR__PROXY__PORT: '0',
    };
    const child = emulator.start(runtime, env);
    const output = collectOutput(child, 8000);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const base = `http://127.0.0.1:${httpPort}`;
      const health = await pollHttp(`${base}/healthz`, { intervalMs: 250, process: child });
      assert.ok(health, `the sidecar did not answer /healthz: ${output()}`);
      assert.equal(health.status, 200);
      assert.deepEqual(await health.json(), { status: 'ok' });

      // Docker runs the HEALTHCHECK command inside the running container: same user, same environment.
      const healthcheck = lastOf(runtime.stage, 'HEALTHCHECK')!;
      const [checkCommand, ...checkArgs] = healthcheck.command;
      const user = ImageEmulator.user(runtime);
      const code = await new Promise<number | null>((resolve) => {
        const proc = spawn(checkCommand!, checkArgs, {
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...runtime.env, ...env },
          stdio: 'ignore',
          ...(user && process.getuid?.() === 0 ? user : {}),
        });
        proc.once('exit', (exitCode) => resolve(exitCode));
      });
      assert.equal(code, 0, 'the HEALTHCHECK command succeeds against the running sidecar');

      const metrics = await fetch(`${base}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(await metrics.text(), /neo4j_sidecar_build_info\{/);

      child.kill('SIGTERM');
      const exitCode = await Promise.race([
        exited,
        new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 30_000)),
      ]);
      assert.equal(exitCode, 0, `SIGTERM stops the sidecar cleanly: ${output().slice(-2000)}`);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
