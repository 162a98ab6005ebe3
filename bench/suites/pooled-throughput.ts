/**
 * Throughput at 16 concurrent sessions: direct to Neo4j, through a bare Node.js socket pipe (the
 * floor for any proxy written in Node), and through the sidecar's proxy in each pooling mode, all in
 * one run with the variants interleaved. RETURN 1 on loopback, where the proxy's CPU per message
 * shows most; with the Go driver too, the fastest client, which exposes that CPU best.
 */
import type { Variant, VariantFigures } from '../support/compare.ts';
import { alternateAll, closedLoop, pairedMedian } from '../support/compare.ts';
import type { BenchContext } from '../support/context.ts';
import { HopProcess } from '../support/hop.ts';
import type { LoadDuringRun } from '../support/machine.ts';
import { missingModesNote, type ProxySetup, poolingEnv, poolingSupport, proxySetups } from '../support/pooling.ts';
import { format, type Section, type TargetCheck } from '../support/report.ts';
import type { SidecarProcess } from '../support/sidecar-process.ts';
import { benchDriver, jsDriverVersion, jsQuery, WORKLOADS } from '../support/workloads.ts';
import { PROXY_THROUGHPUT_TARGET } from './proxy.ts';

export const PROXY_VS_PIPE_TARGET = 0.95;
const CONCURRENCY = 16;
const RETURN_ONE = WORKLOADS[0]!;
const DIRECT = 'direct';
const PIPE = 'bare Node pipe';

interface Path {
  name: string;
  uri: string;
  setup?: ProxySetup & { sidecar: SidecarProcess };
}

interface ClientResult {
  client: string;
  figures: VariantFigures[];
  load: LoadDuringRun;
}

/** Per client: a variant that runs closed loops on a warm driver to a path's URI. */
type VariantFactory = (path: Path) => Promise<Variant['runRound']>;

export async function benchPooledThroughput(context: BenchContext): Promise<Section> {
  const base = {
    id: 'pooled-throughput',
    title: `Throughput at ${CONCURRENCY} concurrent sessions: direct, bare Node pipe, proxy by pooling mode`,
  };
  const { settings, neo4j: server } = context;
  const seconds = settings.roundSeconds;
  const support = poolingSupport();
  const notes: string[] = [];
  const pipe = await HopProcess.start({ targetPort: Number(new URL(server.uri).port), delayMs: 0 });
  const paths: Path[] = [
    { name: DIRECT, uri: server.uri },
    { name: PIPE, uri: `bolt://127.0.0.1:${pipe.port}` },
  ];
  const sidecars: SidecarProcess[] = [];
  const jsDrivers: Array<ReturnType<typeof benchDriver>> = [];
  const results: ClientResult[] = [];
  try {
    for (const setup of proxySetups(support, { withAuthCache: false })) {
      context.log(`  starting a sidecar in front of Neo4j: ${setup.label}`);
      const sidecar = await context.startSidecar(server.uri, poolingEnv(setup, support));
      sidecars.push(sidecar);
      if (!sidecar.proxyUri) {
        notes.push(`${setup.label}: the sidecar's proxy did not accept connections; not measured.`);
        continue;
      }
      paths.push({ name: setup.label, uri: sidecar.proxyUri, setup: { ...setup, sidecar } });
    }
    const clients: Array<{ client: string; factory: VariantFactory }> = [
      {
        client: 'JavaScript',
        factory: async (path) => {
          const driver = benchDriver(path.uri, server.credentials);
          jsDrivers.push(driver);
          await driver.verifyConnectivity();
          return () => closedLoop(jsQuery(driver, RETURN_ONE), CONCURRENCY, seconds);
        },
      },
    ];
    for (const [client, worker, missing] of [
      ['Python', context.python, context.pythonMissing],
      ['Go', context.go, context.goMissing],
    ] as const) {
      if (!worker) notes.push(`${client} not measured: ${missing ?? 'its load worker was not started'}`);
      else
        clients.push({
          client,
          factory: async (path) => {
            await worker.openDriver(`c16 ${path.name}`, path.uri, server.credentials);
            return () => worker.load(`c16 ${path.name}`, RETURN_ONE, CONCURRENCY, seconds);
          },
        });
    }
    for (const { client, factory } of clients) {
      context.log(`  ${client} at concurrency ${CONCURRENCY}: ${paths.map((path) => path.name).join(', ')}`);
      const variants: Variant[] = [];
      for (const path of paths) variants.push({ name: path.name, runRound: await factory(path) });
      const { figures, load } = await alternateAll(variants, {
        rounds: settings.rounds,
        warmupRounds: settings.warmupRounds,
        meter: context.newMeter([pipe.pid, ...sidecars.map((sidecar) => sidecar.pid)]),
        onRound: (name, when, result) => {
          const sidecar = paths.find((path) => path.name === name)?.setup?.sidecar;
          if (!sidecar) return;
          if (when === 'start') sidecar.startPhase(client);
          else sidecar.endPhase(result?.queries ?? 0);
        },
      });
      results.push({ client, figures, load });
    }
  } finally {
    await Promise.all(jsDrivers.map((driver) => driver.close()));
    await Promise.all(sidecars.map((sidecar) => sidecar.stop()));
    await pipe.stop();
  }

  const targets: TargetCheck[] = [];
  const rows = results.flatMap(({ client, figures }) => {
    const find = (name: string) => figures.find((variant) => variant.name === name)!;
    const direct = find(DIRECT);
    const bare = find(PIPE);
    const ratio = (variant: VariantFigures, baseline: VariantFigures) =>
      pairedMedian(baseline, variant, (b, v) => (b.qps > 0 ? v.qps / b.qps : undefined));
    for (const variant of figures) {
      if (variant.errors > 0)
        notes.push(`${client}, ${variant.name}: ${variant.errors} failed queries (first: ${variant.firstError})`);
    }
    const proxied = paths.filter((path) => path.setup);
    for (const path of proxied) {
      const variant = find(path.name);
      const overDirect = ratio(variant, direct);
      const overPipe = ratio(variant, bare);
      targets.push(
        {
          target: `${client}, ${path.name}: >= ${format.percent(PROXY_THROUGHPUT_TARGET)} of direct throughput at concurrency ${CONCURRENCY}`,
          measured: format.percent(overDirect),
          met: overDirect >= PROXY_THROUGHPUT_TARGET,
        },
        {
          target: `${client}, ${path.name}: >= ${format.percent(PROXY_VS_PIPE_TARGET)} of a bare Node pipe's throughput at concurrency ${CONCURRENCY}`,
          measured: format.percent(overPipe),
          met: overPipe >= PROXY_VS_PIPE_TARGET,
        },
      );
    }
    return paths.map((path) => {
      const variant = find(path.name);
      const cpu = path.setup?.sidecar.phases().find((phase) => phase.phase === client)?.cpuMicrosPerQuery;
      return [
        client,
        path.name,
        format.qps(variant.qps),
        variant === direct ? '100.0%' : format.percent(ratio(variant, direct)),
        variant === bare ? '100.0%' : format.percent(ratio(variant, bare)),
        format.micros(variant.p50Us),
        format.micros(variant.p99Us),
        cpu === undefined ? '' : format.micros(cpu),
      ];
    });
  });
  const modesNote = missingModesNote(support);
  if (modesNote) notes.push(modesNote);
  const versions = [`neo4j-driver ${jsDriverVersion()}`];
  if (context.python) versions.push(`Python driver (${context.python.runtimeVersion})`);
  if (context.go) versions.push(`Go driver v5 (${context.go.runtimeVersion})`);
  return {
    ...base,
    method:
      `\`RETURN 1\` in ${CONCURRENCY} closed loops sharing one driver per variant (JavaScript: \`executeQuery\` in this ` +
      'process; Python: threads; Go: goroutines), over plain `bolt://` on loopback: straight to Neo4j, through a bare ' +
      "pipe (a Node process of its own doing `socket.on('data', (d) => other.write(d))` both ways, no parsing), and " +
      'through a sidecar per pooling mode (compiled, its own process, default components). ' +
      `${settings.rounds} rounds of ${seconds} s per variant, interleaved; ratios are medians over the paired rounds. ` +
      `Sidecar CPU is its process time per query over its own rounds. ${versions.join('; ')}.`,
    tables: [
      {
        headers: ['client', 'path', 'q/s', 'of direct', 'of bare pipe', 'p50 µs', 'p99 µs', 'sidecar CPU µs per query'],
        align: ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r'],
        rows,
      },
    ],
    targets,
    load: results.map((result) => result.load),
    notes,
    data: { pooling: support, clients: results.map(({ client, figures }) => ({ client, figures })) },
  };
}
