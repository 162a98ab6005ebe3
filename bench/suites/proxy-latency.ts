/**
 * What the proxy adds to one query when nothing else is going on, and what it keeps of a bare pipe's
 * throughput under load: the Go driver (the fastest client, so the proxy's own time shows most) sends
 * `RETURN 1` with `session.run` from one goroutine (one connection, reused), in alternating rounds
 * against Neo4j direct, a bare Node socket pipe and the sidecar's proxy in each pooling mode; then the
 * same variants at concurrency 16. With `--ref <commit>` the sidecar built from that commit runs as a
 * second set of proxy variants in the same rounds, so before and after share the machine's load.
 */
import type { Variant, VariantFigures } from '../support/compare.ts';
import { alternateAll, pairedMedian } from '../support/compare.ts';
import type { BenchContext } from '../support/context.ts';
import { HopProcess } from '../support/hop.ts';
import type { LoadDuringRun } from '../support/machine.ts';
import { missingModesNote, poolingEnv, poolingSupport, proxySetups } from '../support/pooling.ts';
import { format, type Section, type TargetCheck } from '../support/report.ts';
import type { SidecarProcess } from '../support/sidecar-process.ts';
import { WORKLOADS } from '../support/workloads.ts';

/** The proxy's added p50 at concurrency 1 may exceed a bare pipe's by this much. */
export const ADDED_P50_OVER_PIPE_TARGET_US = 50;
/** Share of a bare pipe's throughput at concurrency 16, by pooling mode. */
export const THROUGHPUT_VS_PIPE_TARGETS: Readonly<Record<string, number>> = {
  off: 0.95,
  session: 0.95,
  transaction: 0.9,
};
const LOADED_CONCURRENCY = 16;
/** Rounds of a second: at ~300 µs a query, a few thousand samples each, and the run stays short. */
const ROUND_SECONDS = 1;
const RETURN_ONE = WORKLOADS[0]!;
const DIRECT = 'direct';
const PIPE = 'bare Node pipe';

interface Target {
  name: string;
  uri: string;
  /** Pooling mode and build, for proxy targets. */
  proxy?: { mode: string; build: 'current' | 'baseline'; sidecar: SidecarProcess };
}

interface Phase {
  concurrency: number;
  figures: VariantFigures[];
  load: LoadDuringRun;
  /** The bare pipe's CPU per query over its own rounds, microseconds: the floor for the sidecar's. */
  pipeCpuMicrosPerQuery: number;
}

/**
 * JIT warm-up: a freshly started sidecar needs about 10,000 queries before its hot path is compiled and
 * its CPU per query settles (measured: 316 µs in its first 2 s at concurrency 1, ~145 µs from 8 s on,
 * against a bare pipe's ~90 µs throughout), so every proxy target first carries this much load unmeasured.
 */
const WARMUP_SECONDS = 4;

export async function benchProxyLatency(context: BenchContext): Promise<Section> {
  const base = {
    id: 'proxy-latency',
    title: 'Proxy latency at concurrency 1 and throughput at 16 vs a bare Node pipe (Go driver)',
  };
  const { settings, neo4j: server, go } = context;
  if (!go) {
    const reason = `Not measured: ${context.goMissing ?? 'the Go load worker was not started'}.`;
    return { ...base, method: '', tables: [], notes: [reason], data: null };
  }
  const support = poolingSupport();
  const notes: string[] = [];
  const pipe = await HopProcess.start({ targetPort: Number(new URL(server.uri).port), delayMs: 0 });
  const targets: Target[] = [
    { name: DIRECT, uri: server.uri },
    { name: PIPE, uri: `bolt://127.0.0.1:${pipe.port}` },
  ];
  const builds: Array<'current' | 'baseline'> = context.baseline ? ['baseline', 'current'] : ['current'];
  const sidecars: SidecarProcess[] = [];
  const phases: Phase[] = [];
  try {
    for (const build of builds) {
      for (const setup of proxySetups(support, { withAuthCache: false })) {
        const name = build === 'baseline' ? `${setup.label} (baseline)` : setup.label;
        context.log(`  starting a sidecar in front of Neo4j: ${name}`);
        const sidecar = await context.startSidecar(server.uri, poolingEnv(setup, support), { build });
        sidecars.push(sidecar);
        if (!sidecar.proxyUri) {
          notes.push(`${name}: the sidecar's proxy did not accept connections; not measured.`);
          continue;
        }
        targets.push({ name, uri: sidecar.proxyUri, proxy: { mode: setup.mode, build, sidecar } });
      }
    }
    for (const target of targets) {
      await go.openDriver(`latency ${target.name}`, target.uri, server.credentials);
      if (target.proxy) await go.load(`latency ${target.name}`, RETURN_ONE, LOADED_CONCURRENCY, WARMUP_SECONDS);
    }
    for (const concurrency of [1, LOADED_CONCURRENCY]) {
      // One connection at concurrency 1: session.run, one round trip a query. Under load, executeQuery
      // as the throughput section sends it.
      const shape = concurrency === 1 ? 'session.run' : 'executeQuery';
      context.log(`  Go, ${shape} at concurrency ${concurrency}: ${targets.map((target) => target.name).join(', ')}`);
      const variants: Variant[] = targets.map((target) => ({
        name: target.name,
        runRound: () => go.load(`latency ${target.name}`, RETURN_ONE, concurrency, ROUND_SECONDS, shape),
      }));
      const phaseName = (name: string) => `c${concurrency} ${name}`;
      const pipeCpu = { seconds: 0, queries: 0, startedAt: 0 };
      const { figures, load } = await alternateAll(variants, {
        rounds: settings.rounds,
        warmupRounds: settings.warmupRounds,
        meter: context.newMeter([pipe.pid, ...sidecars.map((sidecar) => sidecar.pid)]),
        onRound: (name, when, result) => {
          if (name === PIPE) {
            if (when === 'start') pipeCpu.startedAt = pipe.cpuSeconds();
            else {
              pipeCpu.seconds += pipe.cpuSeconds() - pipeCpu.startedAt;
              pipeCpu.queries += result?.queries ?? 0;
            }
          }
          const sidecar = targets.find((target) => target.name === name)?.proxy?.sidecar;
          if (!sidecar) return;
          if (when === 'start') sidecar.startPhase(phaseName(name));
          else sidecar.endPhase(result?.queries ?? 0);
        },
      });
      const pipeCpuMicrosPerQuery = pipeCpu.queries > 0 ? (pipeCpu.seconds * 1e6) / pipeCpu.queries : Number.NaN;
      phases.push({ concurrency, figures, load, pipeCpuMicrosPerQuery });
    }
  } finally {
    await Promise.all(sidecars.map((sidecar) => sidecar.stop()));
    await pipe.stop();
  }

  const [single, loaded] = phases as [Phase, Phase];
  const find = (phase: Phase, name: string) => phase.figures.find((variant) => variant.name === name)!;
  const added = (phase: Phase, name: string, pick: 'p50Us' | 'p99Us') =>
    pairedMedian(find(phase, DIRECT), find(phase, name), (direct, variant) => variant[pick] - direct[pick]);
  const overPipe = (name: string) =>
    pairedMedian(find(single, PIPE), find(single, name), (bare, variant) => variant.p50Us - bare.p50Us);
  const ofPipe = (name: string) =>
    pairedMedian(find(loaded, PIPE), find(loaded, name), (bare, variant) =>
      bare.qps > 0 ? variant.qps / bare.qps : undefined,
    );
  const cpu = (target: Target, concurrency: number) =>
    target.name === PIPE
      ? (concurrency === 1 ? single : loaded).pipeCpuMicrosPerQuery
      : target.proxy?.sidecar.phases().find((phase) => phase.phase === `c${concurrency} ${target.name}`)
          ?.cpuMicrosPerQuery;
  for (const phase of phases) {
    for (const variant of phase.figures) {
      if (variant.errors > 0) {
        notes.push(
          `c${phase.concurrency} ${variant.name}: ${variant.errors} failed queries (first: ${variant.firstError})`,
        );
      }
    }
  }

  const checks: TargetCheck[] = [];
  for (const target of targets) {
    if (target.proxy?.build !== 'current') continue;
    const extra = overPipe(target.name);
    checks.push({
      target: `Go, ${target.name}: added p50 at concurrency 1 within ${ADDED_P50_OVER_PIPE_TARGET_US} µs of a bare Node pipe's`,
      measured: `${format.signedMicros(extra)} µs over the pipe`,
      met: extra <= ADDED_P50_OVER_PIPE_TARGET_US,
    });
    const share = THROUGHPUT_VS_PIPE_TARGETS[target.proxy.mode];
    if (share !== undefined) {
      const measured = ofPipe(target.name);
      checks.push({
        target: `Go, ${target.name}: >= ${format.percent(share)} of a bare Node pipe's throughput at concurrency ${LOADED_CONCURRENCY}`,
        measured: format.percent(measured),
        met: measured >= share,
      });
    }
  }
  const rows = targets.map((target) => {
    const c1 = find(single, target.name);
    const c16 = find(loaded, target.name);
    const isDirect = target.name === DIRECT;
    const c1Cpu = cpu(target, 1);
    const c16Cpu = cpu(target, LOADED_CONCURRENCY);
    return [
      target.name,
      format.micros(c1.p50Us),
      isDirect ? '' : format.signedMicros(added(single, target.name, 'p50Us')),
      isDirect ? '' : format.signedMicros(added(single, target.name, 'p99Us')),
      isDirect || target.name === PIPE ? '' : format.signedMicros(overPipe(target.name)),
      format.qps(c16.qps),
      target.name === PIPE ? '100.0%' : format.percent(ofPipe(target.name)),
      c1Cpu === undefined ? '' : format.micros(c1Cpu),
      c16Cpu === undefined ? '' : format.micros(c16Cpu),
    ];
  });
  const modesNote = missingModesNote(support);
  if (modesNote) notes.push(modesNote);
  return {
    ...base,
    method:
      `Go driver v5 (${go.runtimeVersion}), \`RETURN 1\` over plain \`bolt://\` on loopback. Concurrency 1: \`session.run\` ` +
      'from one goroutine, so one connection carries every query and the proxy only forwards (an already-lent upstream ' +
      'in session mode, one lent per query in transaction mode). Concurrency 16: `ExecuteQuery` from 16 goroutines ' +
      'sharing a driver. Targets: Neo4j direct, a bare Node pipe (its own process, ' +
      "`socket.on('data', (d) => other.write(d))` both ways) and a compiled sidecar per pooling mode" +
      `${context.baseline ? `, each also built from the baseline ${context.baseline.label}` : ''}. ` +
      `${settings.rounds} rounds of ${ROUND_SECONDS} s per target, interleaved; added latencies are medians over paired ` +
      'rounds of (target − direct), "over pipe" of (target − pipe), throughput shares medians of paired ratios. CPU is ' +
      "the sidecar's (or the pipe's) process time per query over its own rounds, which the machine's load sways less " +
      `than latency. Each sidecar first carries ${WARMUP_SECONDS} s of unmeasured load at concurrency ${LOADED_CONCURRENCY} (JIT ` +
      `warm-up), then every target ${settings.warmupRounds} unmeasured round per phase.`,
    tables: [
      {
        headers: [
          'target',
          'c1 p50 µs',
          'c1 added p50 µs',
          'c1 added p99 µs',
          'c1 p50 over pipe µs',
          `c${LOADED_CONCURRENCY} q/s`,
          `c${LOADED_CONCURRENCY} of pipe`,
          'CPU µs/query c1',
          `CPU µs/query c${LOADED_CONCURRENCY}`,
        ],
        align: ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
        rows,
      },
    ],
    targets: checks,
    load: phases.map((phase) => phase.load),
    notes,
    data: {
      baseline: context.baseline?.label ?? null,
      phases: phases.map(({ concurrency, figures }) => ({ concurrency, figures })),
      cpuMicrosPerQuery: targets.map((target) => ({
        target: target.name,
        c1: cpu(target, 1) ?? null,
        c16: cpu(target, LOADED_CONCURRENCY) ?? null,
      })),
    },
  };
}
