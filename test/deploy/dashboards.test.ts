/**
 * The Grafana dashboards: checked in as generated (no drift), packed unchanged into the Helm chart,
 * lint-clean in strict mode, and drawing every alert threshold at its default levels.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { generatedFiles } from '../../scripts/generate/index.ts';
import { repoRoot } from '../../scripts/neo4j/local-neo4j.ts';
import { ensureDashboardLintPort, ensureGrafanaDashboardLinter } from '../../scripts/tools/dashboard-linter.ts';
import { THRESHOLD_KEYS } from '../../src/alerts/index.ts';
import { alertsSection } from '../../src/config/alerts.ts';
import {
  dashboardFiles,
  type GrafanaDashboard,
  type GrafanaPanel,
  loadDashboards,
  panelsOf,
} from './support/dashboards.ts';

const execFileAsync = promisify(execFile);
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JavaScript template
const TEMPLATED_DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

async function lint(binary: string, file: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(binary, ['lint', '--strict', file]);
    return { code: 0, output: `${stdout}${stderr}` };
  } catch (error) {
    const failure = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failure.code ?? 1, output: `${failure.stdout ?? ''}${failure.stderr ?? ''}` };
  }
}

describe('dashboards', () => {
  let dashboards: Map<string, GrafanaDashboard>;
  before(async () => {
    dashboards = await loadDashboards();
  });

  it('are what scripts/generate/ generates (npm run docs after changing metrics or thresholds)', async () => {
    for (const file of generatedFiles()) {
      const current = await readFile(join(repoRoot, file.path), 'utf8').catch(() => '<missing>');
      assert.equal(current, file.content, `${file.path} is stale: run npm run docs`);
    }
  });

  it('are packed into the Helm chart byte for byte', async () => {
    const chartDir = join(repoRoot, 'helm', 'neo4j-pool-sidecar', 'dashboards');
    const inChart = (await readdir(chartDir)).filter((name) => name.endsWith('.json')).sort();
    assert.deepEqual(inChart, (await dashboardFiles()).sort());
    for (const name of inChart) {
      assert.equal(
        await readFile(join(chartDir, name), 'utf8'),
        await readFile(join(repoRoot, 'dashboards', name), 'utf8'),
        name,
      );
    }
  });

  it('have a datasource variable, job and instance variables, and the fleet, queries and connections views', () => {
    assert.deepEqual([...dashboards.keys()].sort(), [
      'neo4j-pool-connections.json',
      'neo4j-pool-fleet.json',
      'neo4j-pool-queries.json',
    ]);
    for (const [name, dashboard] of dashboards) {
      const variables = dashboard.templating.list.map((v) => v.name);
      assert.deepEqual(variables.slice(0, 3), ['datasource', 'job', 'instance'], name);
      assert.ok(variables.includes('pool') || variables.includes('database'), `${name} filters by pool or database`);
      assert.equal(dashboard.editable, false, name);
    }
  });

  it('give every panel a description and a unit, and every query the datasource variable and $__rate_interval', () => {
    for (const [name, dashboard] of dashboards) {
      for (const panel of panelsOf(dashboard)) {
        assert.ok(panel.description, `${name} / ${panel.title}: description`);
        assert.ok(panel.fieldConfig?.defaults.unit, `${name} / ${panel.title}: unit`);
        assert.deepEqual(panel.datasource, TEMPLATED_DATASOURCE);
        for (const target of panel.targets ?? []) {
          assert.deepEqual(target.datasource, TEMPLATED_DATASOURCE);
          for (const call of target.expr.matchAll(/\b(rate|irate)\([^[]*\[([^\]]+)\]/g)) {
            assert.equal(call[2], '$__rate_interval', `${name} / ${panel.title}: ${target.expr}`);
          }
        }
      }
    }
  });

  it('draw every alert threshold as dashed lines at its default levels', () => {
    const thresholds = alertsSection.parse({}).thresholds;
    const drawn: Array<{ panel: GrafanaPanel; levels: number[] }> = [];
    for (const dashboard of dashboards.values()) {
      for (const panel of panelsOf(dashboard)) {
        if (panel.fieldConfig?.defaults.custom?.thresholdsStyle?.mode !== 'dashed') continue;
        const steps = panel.fieldConfig.defaults.thresholds?.steps ?? [];
        drawn.push({ panel, levels: steps.flatMap((step) => (step.value === null ? [] : [step.value])) });
      }
    }
    for (const key of THRESHOLD_KEYS) {
      const expected = [thresholds[key].warning, thresholds[key].critical].filter((v): v is number => v !== null);
      assert.ok(
        drawn.some(({ levels }) => JSON.stringify(levels) === JSON.stringify(expected)),
        `no panel draws the ${key} levels ${expected.join(', ')}`,
      );
    }
  });
});

describe('dashboard lint (strict)', { timeout: 20 * 60_000 }, () => {
  const files = () => dashboardFiles().then((names) => names.map((name) => join(repoRoot, 'dashboards', name)));

  it('passes the port of grafana/dashboard-linter (scripts/tools/dashboard-lint)', async () => {
    const binary = await ensureDashboardLintPort();
    for (const file of await files()) {
      const result = await lint(binary, file);
      assert.equal(result.code, 0, result.output);
    }
  });

  it('passes grafana/dashboard-linter itself where it can be installed', async (t) => {
    const linter = await ensureGrafanaDashboardLinter();
    if (!linter.available) {
      t.skip(`grafana/dashboard-linter cannot be installed here: ${linter.reason}`);
      return;
    }
    for (const file of await files()) {
      const result = await lint(linter.path, file);
      assert.equal(result.code, 0, result.output);
    }
  });

  describe('the port catches what the rules forbid', () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'dashboard-lint-'));
    });
    after(() => rm(dir, { recursive: true, force: true }));

    const cases: Array<{ rule: string; breakIt: (d: GrafanaDashboard, p: GrafanaPanel) => void }> = [
      {
        rule: 'panel-units-rule',
        breakIt: (_, p) => {
          p.fieldConfig!.defaults.unit = 'furlongs';
        },
      },
      {
        rule: 'panel-title-description-rule',
        breakIt: (_, p) => {
          p.description = '';
        },
      },
      {
        rule: 'target-rate-interval-rule',
        breakIt: (_, p) => {
          p.targets![0]!.expr = p.targets![0]!.expr.replace('$__rate_interval', '5m');
        },
      },
      {
        rule: 'target-job-rule',
        breakIt: (_, p) => {
          p.targets![0]!.expr = p.targets![0]!.expr.replace('job=~"$job", ', '');
        },
      },
      {
        rule: 'target-counter-agg-rule',
        breakIt: (_, p) => {
          p.targets![0]!.expr = 'sum(neo4j_query_errors_total{job=~"$job", instance=~"$instance"})';
        },
      },
      {
        rule: 'target-promql-rule',
        breakIt: (_, p) => {
          p.targets![0]!.expr = 'sum(rate(';
        },
      },
      {
        rule: 'panel-datasource-rule',
        breakIt: (_, p) => {
          p.datasource = { type: 'prometheus', uid: 'P1' };
        },
      },
      {
        rule: 'uneditable-dashboard',
        breakIt: (d) => {
          d.editable = true;
        },
      },
      {
        rule: 'template-instance-rule',
        breakIt: (d) => {
          d.templating.list = d.templating.list.filter((v) => v.name !== 'instance');
        },
      },
    ];
    for (const { rule, breakIt } of cases) {
      it(rule, async () => {
        const binary = await ensureDashboardLintPort();
        const source = JSON.parse(
          await readFile(join(repoRoot, 'dashboards', 'neo4j-pool-queries.json'), 'utf8'),
        ) as GrafanaDashboard;
        const panel = panelsOf(source).find(
          (p) => p.type === 'timeseries' && /rate\(/.test(p.targets?.[0]?.expr ?? ''),
        )!;
        breakIt(source, panel);
        const file = join(dir, `${rule}.json`);
        await writeFile(file, JSON.stringify(source));
        const result = await lint(binary, file);
        assert.equal(result.code, 1, `expected ${rule} to fail:\n${result.output}`);
        assert.match(result.output, new RegExp(`\\[error\\] ${rule}:`), result.output);
      });
    }
  });
});
