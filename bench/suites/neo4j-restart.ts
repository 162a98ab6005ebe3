/**
 * Neo4j restarted under per-task workers: how many tasks fail, how long the longest task takes and
 * how long the restart took, direct and through the sidecar in each pooling mode. Twelve JavaScript
 * workers (and, where the Python driver is set up, twelve Python ones) each open a driver per task,
 * write one node and close it; after a few seconds the bench stops Neo4j (SIGTERM, as an upgrade or a
 * node drain does) and starts it again on the same data, then lets the workers run a few seconds
 * more. Every task writes its own id, so the table also says whether an acknowledged write was lost or
 * one was committed twice. A restart needs its own server: this section starts a private Neo4j.
 */
import neo4j from 'neo4j-driver';
import {
  committedIds,
  inFlightAt,
  judge,
  type LoadVerdict,
  type RunningLoad,
  startJsLoad,
  startPythonLoad,
  type TaskShape,
} from '../../scripts/load/per-task-writes.ts';
import { type LocalNeo4j, startLocalNeo4j } from '../../scripts/neo4j/local-neo4j.ts';
import type { BenchContext } from '../support/context.ts';
import type { Section } from '../support/report.ts';

const WORKERS = 12;
const BEFORE_MS = 4000;
const AFTER_MS = 6000;

interface Scenario {
  readonly path: string;
  readonly language: 'JavaScript' | 'Python';
  readonly shape: TaskShape;
  /** Planned: the sidecar is paused before the stop (`neo4j-pool-sidecar pause`) and resumed after the start. */
  readonly planned?: boolean;
}

/** The pause's drain timeout: the tasks in flight are single writes, done in well under a second. */
const DRAIN_TIMEOUT_SECONDS = 30;

interface Outcome extends Scenario {
  readonly verdict: LoadVerdict;
  readonly inFlightAtStop: number;
  readonly restartSeconds: number;
}

const PATHS = ['direct', 'sidecar, mode off', 'sidecar, session mode', 'sidecar, transaction mode'] as const;
const MODES: Record<(typeof PATHS)[number], string | null> = {
  direct: null,
  'sidecar, mode off': 'off',
  'sidecar, session mode': 'session',
  'sidecar, transaction mode': 'transaction',
};

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function benchNeo4jRestart(context: BenchContext): Promise<Section> {
  const server: LocalNeo4j = await startLocalNeo4j({ name: 'bench-restart', heap: '512m', log: context.log });
  const sidecars = new Map<string, string>();
  /** Each sidecar's HTTP address, for pause and resume. */
  const admin = new Map<string, string>();
  const meter = context.newMeter();
  try {
    for (const path of PATHS) {
      const mode = MODES[path];
      if (mode === null) {
        sidecars.set(path, server.uri);
        continue;
      }
      const sidecar = await context.startSidecar(server.uri, { SIDECAR__PROXY__POOLING__MODE: mode });
      if (sidecar.proxyUri === undefined) throw new Error('the sidecar build has no proxy');
      sidecars.set(path, sidecar.proxyUri);
      admin.set(path, `http://127.0.0.1:${sidecar.httpPort}`);
    }
    const scenarios: Scenario[] = [
      ...PATHS.map((path) => ({ path, language: 'JavaScript' as const, shape: 'session.run' as const })),
      { path: 'direct', language: 'JavaScript', shape: 'executeQuery' },
      { path: 'sidecar, transaction mode', language: 'JavaScript', shape: 'executeQuery' },
      // Planned maintenance: pause, restart, resume. Pooling off has no pool to pause (404).
      ...(['sidecar, session mode', 'sidecar, transaction mode'] as const).flatMap((path) =>
        (['session.run', 'executeQuery'] as const).map((shape) => ({
          path,
          language: 'JavaScript' as const,
          shape,
          planned: true,
        })),
      ),
      ...(context.pythonMissing === undefined
        ? [
            { path: 'direct', language: 'Python' as const, shape: 'session.run' as const },
            { path: 'sidecar, transaction mode', language: 'Python' as const, shape: 'session.run' as const },
            {
              path: 'sidecar, transaction mode',
              language: 'Python' as const,
              shape: 'session.run' as const,
              planned: true,
            },
          ]
        : []),
    ];
    const outcomes: Outcome[] = [];
    meter.start();
    for (const [index, scenario] of scenarios.entries()) {
      context.log(
        `${scenario.planned ? 'planned' : 'unplanned'} restart under load: ${scenario.path}, ${scenario.language} ${scenario.shape}`,
      );
      const adminUrl = scenario.planned ? admin.get(scenario.path) : undefined;
      outcomes.push(
        await restartUnderLoad(server, sidecars.get(scenario.path) ?? server.uri, scenario, index, adminUrl),
      );
    }
    const load = meter.stop();
    return {
      id: 'neo4j-restart',
      title: 'Neo4j restarted under per-task workers',
      method: `${WORKERS} per-task workers (a driver per task, one write, driver closed) run ${BEFORE_MS / 1000} s, Neo4j is stopped (SIGTERM) and started again on the same data, the workers run ${AFTER_MS / 1000} s more. "In flight" counts the tasks running at the moment of the stop: the most a crash can fail without anything held. Planned: the sidecar is paused (POST /proxy/pause, drain timeout ${DRAIN_TIMEOUT_SECONDS} s, as \`neo4j-pool-sidecar pause\`) before the stop and resumed once Neo4j answers again; "restart" then runs from the pause's answer to the resume.`,
      tables: [
        {
          headers: [
            'path',
            'restart kind',
            'workers',
            'tasks',
            'failed tasks',
            'in flight at the stop',
            'longest task',
            'restart',
            'lost / committed twice',
            'failures by code',
          ],
          align: ['l', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
          rows: outcomes.map((outcome) => [
            outcome.path,
            outcome.planned ? 'planned (pause, resume)' : 'unplanned',
            `${outcome.language} ${outcome.shape}`,
            String(outcome.verdict.tasks),
            String(outcome.verdict.failed),
            String(outcome.inFlightAtStop),
            `${(outcome.verdict.longestTaskMs / 1000).toFixed(1)} s`,
            `${outcome.restartSeconds.toFixed(1)} s`,
            `${outcome.verdict.lost} / ${outcome.verdict.duplicated}`,
            outcome.verdict.failuresByCode.map(([code, count]) => `${code} ${count}`).join(', '),
          ]),
        },
      ],
      load: [load],
      data: outcomes,
    };
  } finally {
    await server.destroy();
  }
}

/** POST a maintenance verb to a sidecar; throws with its answer unless it is a drained pause or a resume. */
async function maintenance(adminUrl: string, verb: 'pause' | 'resume'): Promise<void> {
  const path = verb === 'pause' ? `/proxy/pause?drainTimeoutSeconds=${DRAIN_TIMEOUT_SECONDS}` : '/proxy/resume';
  const response = await fetch(`${adminUrl}${path}`, { method: 'POST' });
  const body = (await response.json()) as { drained?: boolean };
  if (!response.ok || (verb === 'pause' && body.drained !== true)) {
    throw new Error(`${verb} answered ${response.status}: ${JSON.stringify(body)}`);
  }
}

async function restartUnderLoad(
  server: LocalNeo4j,
  uri: string,
  scenario: Scenario,
  index: number,
  adminUrl: string | undefined,
): Promise<Outcome> {
  const options = {
    uri,
    username: server.username,
    password: server.password,
    runId: `restart-${index}-${Date.now()}`,
    workers: WORKERS,
    shape: scenario.shape,
  };
  const load: RunningLoad = scenario.language === 'Python' ? await startPythonLoad(options) : startJsLoad(options);
  await delay(BEFORE_MS);
  if (adminUrl !== undefined) await maintenance(adminUrl, 'pause');
  const stopAt = Date.now();
  await server.stop();
  await server.start();
  if (adminUrl !== undefined) await maintenance(adminUrl, 'resume');
  const restartSeconds = (Date.now() - stopAt) / 1000;
  await delay(AFTER_MS);
  const records = await load.stop();
  const observer = neo4j.driver(server.uri, neo4j.auth.basic(server.username, server.password), {
    logging: { level: 'error', logger: () => {} },
  });
  try {
    const committed = await committedIds(observer, options.runId);
    return {
      ...scenario,
      verdict: judge(records, committed),
      inFlightAtStop: inFlightAt(records, stopAt),
      restartSeconds,
    };
  } finally {
    await observer.close();
  }
}
