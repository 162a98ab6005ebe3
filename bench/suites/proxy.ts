/**
 * Direct to Neo4j against through the sidecar's Bolt proxy, with the JavaScript driver (in this
 * process) and the Python driver (bench/python/load_worker.py), same workloads, rounds alternating.
 * The sidecar runs in its own process; its CPU during the proxied rounds is attributed to them.
 */
import { alternate, closedLoop, type RoundResult, type Variant } from '../support/compare.ts';
import { type BenchContext, errorNotes, type ThroughputCell, throughputTable } from '../support/context.ts';
import { combinedLoad, format, type Section, type TargetCheck } from '../support/report.ts';
import { benchDriver, jsDriverVersion, jsQuery, WORKLOADS, type Workload } from '../support/workloads.ts';

export const PROXY_THROUGHPUT_TARGET = 0.85;
export const PROXY_ADDED_P50_TARGET_US = 100;
const TARGET_CONCURRENCY = 16;

export function proxyMissingNote(): string {
  return (
    'Not measured: the sidecar did not accept Bolt connections on its proxy port, so the Bolt proxy ' +
    '(src/proxy, started by startSidecar when proxy.enabled) is not built in yet.'
  );
}

/**
 * Throughput is judged at concurrency 16, as the target says. Added p50 is judged on RETURN 1 at
 * concurrency 1, where it is the proxy's own latency: with 16 in flight the p50 is mostly queueing,
 * and on a 1,000-row read mostly transfer, both of which the throughput ratio already covers.
 */
function proxyTargets(cells: readonly ThroughputCell[], client: string): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const atTarget = cells.filter((cell) => cell.concurrency === TARGET_CONCURRENCY);
  if (atTarget.length > 0) {
    const worstRatio = Math.min(...atTarget.map((cell) => cell.comparison.throughputRatio));
    checks.push({
      target: `${client}: proxy >= ${format.percent(PROXY_THROUGHPUT_TARGET)} of direct throughput at concurrency ${TARGET_CONCURRENCY}`,
      measured: `lowest ${format.percent(worstRatio)}`,
      met: worstRatio >= PROXY_THROUGHPUT_TARGET,
    });
  }
  const latencyCell = cells.find((cell) => cell.concurrency === 1 && cell.workload.key === 'return1');
  if (latencyCell) {
    const added = latencyCell.comparison.addedP50Us;
    checks.push({
      target: `${client}: proxy adds <= ${PROXY_ADDED_P50_TARGET_US} µs to p50 (RETURN 1, concurrency 1)`,
      measured: `${format.signedMicros(added)} µs`,
      met: added <= PROXY_ADDED_P50_TARGET_US,
    });
  }
  return checks;
}

type ClientName = 'JavaScript' | 'Python';

async function compareDirectAndProxy(
  context: BenchContext,
  client: ClientName,
  variantsFor: (workload: Workload, concurrency: number) => { direct: Variant; proxy: Variant },
): Promise<ThroughputCell[]> {
  const cells: ThroughputCell[] = [];
  for (const workload of WORKLOADS) {
    for (const concurrency of context.settings.concurrencies) {
      context.log(`  direct vs proxy (${client}): ${workload.name}, concurrency ${concurrency}`);
      const { direct, proxy } = variantsFor(workload, concurrency);
      const phase = `${client} driver through the proxy, ${workload.name}, concurrency ${concurrency}`;
      const comparison = await alternate(direct, proxy, {
        rounds: context.settings.rounds,
        warmupRounds: context.settings.warmupRounds,
        meter: context.newMeter(),
        onRound: (variant, when, result?: RoundResult) => {
          if (variant !== proxy.name) return;
          if (when === 'start') context.sidecar.startPhase(phase);
          else context.sidecar.endPhase(result?.queries ?? 0);
        },
      });
      cells.push({ workload, concurrency, comparison });
    }
  }
  return cells;
}

export async function benchProxyJs(context: BenchContext): Promise<Section> {
  const proxyUri = context.sidecar.proxyUri;
  const base = {
    id: 'proxy-js',
    title: 'Direct vs through the Bolt proxy (JavaScript driver)',
  };
  if (!proxyUri) return { ...base, method: '', tables: [], notes: [proxyMissingNote()], data: null };
  const { settings, neo4j } = context;
  const direct = benchDriver(neo4j.uri, neo4j.credentials);
  const proxied = benchDriver(proxyUri, neo4j.credentials);
  let cells: ThroughputCell[];
  try {
    await direct.verifyConnectivity();
    await proxied.verifyConnectivity();
    cells = await compareDirectAndProxy(context, 'JavaScript', (workload, concurrency) => ({
      direct: {
        name: 'direct',
        runRound: () => closedLoop(jsQuery(direct, workload), concurrency, settings.roundSeconds),
      },
      proxy: {
        name: 'proxy',
        runRound: () => closedLoop(jsQuery(proxied, workload), concurrency, settings.roundSeconds),
      },
    }));
  } finally {
    await direct.close();
    await proxied.close();
  }
  return {
    ...base,
    method:
      `neo4j-driver ${jsDriverVersion()} \`executeQuery\` in closed loops over \`bolt://\`, one driver direct to Neo4j and ` +
      `one to the sidecar's proxy (sidecar in its own process). ${settings.rounds} alternating rounds of ` +
      `${settings.roundSeconds} s per variant and cell: medians; ratio and added p50 are medians over the paired rounds.`,
    tables: [throughputTable(cells, 'direct', 'proxy')],
    targets: proxyTargets(cells, 'JavaScript'),
    load: combinedLoad(cells.map((cell) => cell.comparison.load)),
    notes: errorNotes(cells),
    data: cells.map(({ workload, concurrency, comparison }) => ({ workload: workload.key, concurrency, comparison })),
  };
}

export async function benchProxyPython(context: BenchContext): Promise<Section> {
  const proxyUri = context.sidecar.proxyUri;
  const base = {
    id: 'proxy-python',
    title: 'Direct vs through the Bolt proxy (Python driver)',
  };
  if (!proxyUri) return { ...base, method: '', tables: [], notes: [proxyMissingNote()], data: null };
  const python = context.python;
  if (!python) {
    return { ...base, method: '', tables: [], notes: [`Not measured: ${context.pythonMissing}`], data: null };
  }
  const { settings, neo4j } = context;
  const driverVersion = await python.openDriver('direct', neo4j.uri, neo4j.credentials);
  await python.openDriver('proxy', proxyUri, neo4j.credentials);
  const cells = await compareDirectAndProxy(context, 'Python', (workload, concurrency) => ({
    direct: { name: 'direct', runRound: () => python.load('direct', workload, concurrency, settings.roundSeconds) },
    proxy: { name: 'proxy', runRound: () => python.load('proxy', workload, concurrency, settings.roundSeconds) },
  }));
  return {
    ...base,
    method:
      `Official Python driver ${driverVersion} (${python.runtimeVersion}) \`execute_query\` in closed loops, concurrency as ` +
      `threads sharing one driver, over \`bolt://\` direct and through the proxy. ${settings.rounds} alternating ` +
      `rounds of ${settings.roundSeconds} s per variant and cell: medians; ratio and added p50 are medians over the paired rounds.`,
    tables: [throughputTable(cells, 'direct', 'proxy')],
    targets: proxyTargets(cells, 'Python'),
    load: combinedLoad(cells.map((cell) => cell.comparison.load)),
    notes: errorNotes(cells),
    data: cells.map(({ workload, concurrency, comparison }) => ({ workload: workload.key, concurrency, comparison })),
  };
}
