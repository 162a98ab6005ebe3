/**
 * The Helm chart: `helm lint --strict` and `helm template` with the default values and the values
 * files under ci/, the rendered objects parsed and checked (non-root, read-only, probes, the secret
 * reference, labels, selectors that find each other), the PrometheusRule compared with what
 * `neo4j-pool-sidecar rules` prints for the rendered config file, the dashboards compared with
 * dashboards/, and a user's own chart that includes the sidecar's named templates.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseAllDocuments, parse as parseYaml, stringify as toYaml } from 'yaml';
import { repoRoot } from '../../scripts/neo4j/local-neo4j.ts';
import { ensureHelm } from '../../scripts/tools/helm.ts';
import { runPromtool } from '../../scripts/tools/promtool.ts';
import { configSchema } from '../../src/config/schema.ts';
import { cliArgv } from '../support/cli.ts';

const execFileAsync = promisify(execFile);
const chartDir = join(repoRoot, 'helm', 'neo4j-pool-sidecar');
const NAMESPACE = 'jobs';
/** A cluster with native sidecars (1.29+); `auto` must pick them. */
const KUBE_VERSION = '1.31.0';

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

interface Container {
  name: string;
  restartPolicy?: string;
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
  ports?: Array<{ name: string; containerPort: number }>;
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  startupProbe?: { httpGet?: { path: string; port: string | number } };
  securityContext?: {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[] };
  };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}

interface PodSpec {
  terminationGracePeriodSeconds?: number;
  containers: Container[];
  initContainers?: Container[] | null;
  volumes?: Array<{
    name: string;
    secret?: { secretName: string; items?: Array<{ key: string }> };
    configMap?: { name: string };
  }>;
}

interface ValuesCase {
  name: string;
  file?: string;
  kubeVersion?: string;
  /** Top-level values set on the command line (--set), over the file. */
  set?: Record<string, string>;
}

const CASES: ValuesCase[] = [
  { name: 'default values' },
  { name: 'native sidecar with the example worker', file: 'ci/native-example-values.yaml' },
  { name: 'regular sidecar, PodMonitor, custom thresholds', file: 'ci/regular-podmonitor-values.yaml' },
  { name: 'minimal: no rules, no dashboards', file: 'ci/minimal-values.yaml' },
  {
    name: 'example worker on a cluster without native sidecars (auto picks a regular container)',
    file: 'ci/native-example-values.yaml',
    kubeVersion: '1.28.0',
    set: { sidecarMode: 'auto' },
  },
];

let helm: string;

async function helmRun(args: string[], cwd = chartDir): Promise<{ stdout: string; stderr: string }> {
  const { stdout, stderr } = await execFileAsync(helm, args, { cwd, maxBuffer: 64 * 1024 * 1024 });
  return { stdout: String(stdout), stderr: String(stderr) };
}

function valuesArgs(testCase: ValuesCase): string[] {
  const args = testCase.file ? ['-f', join(chartDir, testCase.file)] : [];
  for (const [key, value] of Object.entries(testCase.set ?? {})) args.push('--set', `${key}=${value}`);
  return args;
}

async function render(testCase: ValuesCase, extra: string[] = []): Promise<K8sObject[]> {
  const { stdout } = await helmRun([
    'template',
    'pools',
    chartDir,
    '--namespace',
    NAMESPACE,
    '--kube-version',
    testCase.kubeVersion ?? KUBE_VERSION,
    ...valuesArgs(testCase),
    ...extra,
  ]);
  return parseAllDocuments(stdout)
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((doc): doc is K8sObject => doc !== null);
}

async function effectiveValues(testCase: ValuesCase): Promise<Record<string, unknown>> {
  const defaults = parseYaml(await readFile(join(chartDir, 'values.yaml'), 'utf8')) as Record<string, unknown>;
  const overrides = testCase.file
    ? (parseYaml(await readFile(join(chartDir, testCase.file), 'utf8')) as Record<string, unknown>)
    : {};
  return deepMerge(deepMerge(defaults, overrides), testCase.set ?? {});
}

/** Helm's merge of a values file over the defaults: maps merge, anything else (null included) replaces. */
function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] =
      value && typeof value === 'object' && !Array.isArray(value) && current && typeof current === 'object'
        ? deepMerge(current as Record<string, unknown>, value as Record<string, unknown>)
        : value;
  }
  return out;
}

function podSpecs(objects: K8sObject[]): Array<{ owner: K8sObject; pod: PodSpec; labels: Record<string, string> }> {
  return objects
    .filter((o) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(o.kind))
    .map((owner) => {
      const template = (owner.spec as { template: { metadata: { labels: Record<string, string> }; spec: PodSpec } })
        .template;
      return { owner, pod: template.spec, labels: template.metadata.labels };
    });
}

function sidecarOf(pod: PodSpec): { container: Container; native: boolean } {
  const native = (pod.initContainers ?? []).find((c) => c.name === 'neo4j-pool-sidecar');
  const regular = pod.containers.find((c) => c.name === 'neo4j-pool-sidecar');
  assert.ok(Boolean(native) !== Boolean(regular), 'the sidecar is in exactly one of initContainers and containers');
  return native ? { container: native, native: true } : { container: regular!, native: false };
}

const COMPONENT = 'app.kubernetes.io/component';

function isCensus(object: K8sObject): boolean {
  return object.metadata.labels?.[COMPONENT] === 'census';
}

/** The config file of the sidecars beside workers, or (`census`) of the census instance. */
function configFileOf(objects: K8sObject[], role: 'sidecar' | 'census' = 'sidecar'): Record<string, unknown> {
  const configMap = objects.find(
    (o) => o.kind === 'ConfigMap' && o.data?.['config.yaml'] !== undefined && isCensus(o) === (role === 'census'),
  );
  assert.ok(configMap, `a ConfigMap with the ${role} config.yaml`);
  return parseYaml(configMap.data!['config.yaml']!) as Record<string, unknown>;
}

function censusEnabled(config: Record<string, unknown>): boolean | undefined {
  return (config.probes as { census?: { enabled?: boolean } } | undefined)?.census?.enabled;
}

function assertSidecarContainer(container: Container, values: Record<string, unknown>): void {
  const security = container.securityContext;
  assert.equal(security?.runAsNonRoot, true, 'runAsNonRoot');
  assert.ok((security?.runAsUser ?? 0) > 0, 'a non-root uid');
  assert.equal(security?.readOnlyRootFilesystem, true, 'readOnlyRootFilesystem');
  assert.equal(security?.allowPrivilegeEscalation, false, 'allowPrivilegeEscalation');
  assert.deepEqual(security?.capabilities?.drop, ['ALL'], 'all capabilities dropped');
  assert.equal(container.livenessProbe?.httpGet?.path, '/healthz');
  assert.equal(container.readinessProbe?.httpGet?.path, '/readyz');
  const metricsPort = container.ports?.find((p) => p.name === 'sidecar-metrics');
  assert.equal(metricsPort?.containerPort, (values.ports as { metrics: number }).metrics);
  assert.equal(container.livenessProbe?.httpGet?.port, 'sidecar-metrics');
  assert.equal(container.readinessProbe?.httpGet?.port, 'sidecar-metrics');
  assert.ok(container.resources?.requests?.memory && container.resources.limits?.memory, 'memory request and limit');
  // The image's ENV would otherwise override the config file's listener.
  const portEnv = container.env?.find((e) => e.name === 'SIDECAR__HTTP__PORT');
  assert.equal(portEnv?.value, String((values.ports as { metrics: number }).metrics), 'SIDECAR__HTTP__PORT');
  const passwordFile = container.env?.find((e) => e.name === 'NEO4J_PASSWORD_FILE');
  assert.equal(passwordFile?.value, '/var/run/secrets/neo4j-pool-sidecar/password');
  assert.ok(
    !container.env?.some((e) => e.name === 'NEO4J_PASSWORD' && e.value !== undefined),
    'no plain password in the environment',
  );
  assert.ok(
    container.volumeMounts?.some((m) => m.mountPath === '/tmp'),
    'a writable /tmp beside the read-only root',
  );
}

function assertStandardLabels(object: K8sObject): void {
  const labels = object.metadata.labels ?? {};
  for (const key of [
    'helm.sh/chart',
    'app.kubernetes.io/name',
    'app.kubernetes.io/instance',
    'app.kubernetes.io/managed-by',
  ]) {
    assert.ok(labels[key], `${object.kind} ${object.metadata.name} lacks label ${key}`);
  }
}

function matches(selector: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector).every(([key, value]) => labels?.[key] === value);
}

describe('Helm chart', { timeout: 30 * 60_000 }, () => {
  let workDir: string;
  before(async () => {
    helm = await ensureHelm((line) => console.log(line));
    workDir = await mkdtemp(join(tmpdir(), 'helm-chart-test-'));
  });
  after(() => rm(workDir, { recursive: true, force: true }));

  for (const testCase of CASES) {
    describe(testCase.name, () => {
      let objects: K8sObject[];
      let values: Record<string, unknown>;
      before(async () => {
        objects = await render(testCase);
        values = await effectiveValues(testCase);
      });

      it('passes helm lint --strict', async () => {
        const { stdout } = await helmRun([
          'lint',
          '--strict',
          chartDir,
          '--kube-version',
          testCase.kubeVersion ?? KUBE_VERSION,
          ...valuesArgs(testCase),
        ]);
        assert.match(stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
        assert.doesNotMatch(stdout, /\[(WARNING|ERROR)\]/);
      });

      it('labels every object and puts namespaced objects in the release namespace', () => {
        for (const object of objects) {
          assertStandardLabels(object);
          const dashboardsNamespace = (values.dashboards as { namespace: string }).namespace;
          const expected =
            object.metadata.labels?.grafana_dashboard && dashboardsNamespace ? dashboardsNamespace : NAMESPACE;
          assert.equal(object.metadata.namespace, expected, `${object.kind} ${object.metadata.name}`);
        }
      });

      it('renders a config file the sidecar accepts, without a password, reading the Secret as a file', async () => {
        const config = configFileOf(objects);
        const neo4j = config.neo4j as Record<string, unknown>;
        assert.equal(neo4j.password, undefined);
        assert.equal(neo4j.passwordFile, '/var/run/secrets/neo4j-pool-sidecar/password');
        const passwordFile = join(workDir, `${testCase.name.replace(/\W+/g, '-')}-password`);
        await writeFile(passwordFile, 'not-the-real-password\n');
        const parsed = configSchema.safeParse({ ...config, neo4j: { ...neo4j, passwordFile } });
        assert.ok(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues));
        assert.equal((config.http as { port: number }).port, (values.ports as { metrics: number }).metrics);
      });

      it('runs the sidecar non-root and read-only with /healthz and /readyz probes and the Secret mounted', () => {
        const credentials = values.neo4jCredentials as { existingSecret: string; passwordKey: string };
        for (const { owner, pod } of podSpecs(objects)) {
          const { container, native } = sidecarOf(pod);
          assertSidecarContainer(container, values);
          const kubeSupportsNative = (testCase.kubeVersion ?? KUBE_VERSION) >= '1.29';
          const mode = values.sidecarMode as string;
          if (isCensus(owner)) {
            assert.equal(native, false, 'the census instance is the main container of its pod');
            assert.ok(!container.ports?.some((p) => p.name === 'sidecar-bolt'), 'the census instance has no proxy');
          } else {
            assert.equal(native, mode === 'native' || (mode === 'auto' && kubeSupportsNative), 'native sidecar choice');
          }
          if (native) assert.equal(container.restartPolicy, 'Always', 'a native sidecar restarts with the pod');
          else assert.equal(container.restartPolicy, undefined);
          const secret = pod.volumes?.find((v) => v.name === 'neo4j-pool-sidecar-credentials')?.secret;
          assert.equal(secret?.secretName, credentials.existingSecret);
          assert.deepEqual(
            secret?.items?.map((item) => item.key),
            [credentials.passwordKey],
          );
          for (const other of pod.containers) {
            if (other.name === 'neo4j-pool-sidecar') continue;
            assert.equal(other.securityContext?.runAsNonRoot, true, `${other.name} runs as non-root`);
            assert.equal(other.securityContext?.readOnlyRootFilesystem, true, `${other.name} read-only root`);
            for (const env of other.env ?? []) {
              if (/PASSWORD/.test(env.name))
                assert.equal(env.valueFrom?.secretKeyRef?.name, credentials.existingSecret);
            }
          }
        }
      });

      it('lets the Service, ServiceMonitor and PodMonitor find the pods and the metrics port', () => {
        // Workers' sidecars and the census instance are scraped apart, each through its own objects.
        for (const census of [false, true]) {
          const own = (o: K8sObject) => isCensus(o) === census || o.metadata.labels?.[COMPONENT] === 'census-metrics';
          const service = objects.find(
            (o) => o.kind === 'Service' && o.metadata.labels?.[COMPONENT] === (census ? 'census-metrics' : 'metrics'),
          );
          const serviceMonitor = objects.find(
            (o) => o.kind === 'ServiceMonitor' && o.metadata.name.endsWith('-census') === census,
          );
          const podMonitor = objects.find(
            (o) => o.kind === 'PodMonitor' && o.metadata.name.endsWith('-census') === census,
          );
          const pods = podSpecs(objects).filter(({ owner }) => isCensus(owner) === census);
          const others = podSpecs(objects).filter(({ owner }) => isCensus(owner) !== census);
          if (census && pods.length === 0) {
            assert.ok(!service && !serviceMonitor && !podMonitor, 'no census objects without the census instance');
            continue;
          }
          if (serviceMonitor) {
            assert.ok(service && own(service), 'a ServiceMonitor needs its Service');
            const selector = (serviceMonitor.spec as { selector: { matchLabels: Record<string, string> } }).selector
              .matchLabels;
            assert.ok(matches(selector, service.metadata.labels), 'ServiceMonitor selects the Service');
            for (const other of objects.filter((o) => o.kind === 'Service' && o !== service)) {
              assert.ok(
                !matches(selector, other.metadata.labels),
                `ServiceMonitor selects only ${service.metadata.name}`,
              );
            }
            const endpoints = (serviceMonitor.spec as { endpoints: Array<{ port: string; path: string }> }).endpoints;
            const servicePorts = (service.spec as { ports: Array<{ name: string; targetPort: string }> }).ports;
            assert.ok(servicePorts.some((p) => p.name === endpoints[0]?.port && p.targetPort === 'sidecar-metrics'));
            assert.equal(endpoints[0]?.path, '/metrics');
            assert.equal(serviceMonitor.metadata.labels?.release, 'kube-prometheus-stack');
          }
          if (service) {
            const selector = (service.spec as { selector: Record<string, string> }).selector;
            for (const { labels } of pods)
              assert.ok(matches(selector, labels), `${service.metadata.name} selects its pods`);
            for (const { labels } of others)
              assert.ok(!matches(selector, labels), `${service.metadata.name} selects no other pod`);
          }
          if (podMonitor) {
            const selector = (podMonitor.spec as { selector: { matchLabels: Record<string, string> } }).selector
              .matchLabels;
            for (const { labels, pod } of pods) {
              assert.ok(matches(selector, labels), 'the PodMonitor selects the sidecar pods');
              const endpoint = (podMonitor.spec as { podMetricsEndpoints: Array<{ port: string }> })
                .podMetricsEndpoints[0];
              assert.ok(sidecarOf(pod).container.ports?.some((p) => p.name === endpoint?.port));
            }
            for (const { labels } of others) assert.ok(!matches(selector, labels), 'no pod is scraped twice');
          }
          assert.ok(serviceMonitor || podMonitor, 'something tells Prometheus to scrape');
        }
      });

      it('runs the server-wide census once for the release: one census Deployment, the census off beside workers', () => {
        const censusDeployments = objects.filter((o) => o.kind === 'Deployment' && isCensus(o));
        assert.equal(censusDeployments.length, 1, 'exactly one census Deployment');
        const [deployment] = censusDeployments as [K8sObject];
        assert.equal((deployment.spec as { replicas: number }).replicas, 1);
        assert.equal((deployment.spec as { strategy: { type: string } }).strategy.type, 'Recreate');

        const censusConfig = configFileOf(objects, 'census');
        assert.equal(censusEnabled(censusConfig), true, 'census on in the census instance');
        assert.equal((censusConfig.proxy as { enabled: boolean }).enabled, false, 'proxy off in the census instance');
        assert.equal(censusEnabled(configFileOf(objects)), false, 'census off in the sidecars beside workers');
        for (const config of [censusConfig, configFileOf(objects)]) {
          assert.ok(
            configSchema.safeParse({ ...config, neo4j: { ...(config.neo4j as object), passwordFile: undefined } })
              .success,
          );
        }

        // Each pod mounts its own config: workers the sidecar one, the census instance the census one.
        const configMapName = (census: boolean) =>
          objects.find(
            (o) => o.kind === 'ConfigMap' && o.data?.['config.yaml'] !== undefined && isCensus(o) === census,
          )!.metadata.name;
        for (const { owner, pod } of podSpecs(objects)) {
          const mounted = pod.volumes?.find((v) => v.name === 'neo4j-pool-sidecar-config')?.configMap?.name;
          assert.equal(mounted, configMapName(isCensus(owner)), `${owner.metadata.name} mounts its own config`);
        }
      });

      it('renders the same PrometheusRule as `neo4j-pool-sidecar rules` for the same config, and promtool accepts it', async (t) => {
        const rule = objects.find((o) => o.kind === 'PrometheusRule');
        if (!(values.prometheusRule as { enabled: boolean }).enabled) {
          assert.equal(rule, undefined);
          t.diagnostic('prometheusRule.enabled is false in these values');
          return;
        }
        assert.ok(rule, 'a PrometheusRule');
        const config = configFileOf(objects);
        const dir = await mkdtemp(join(workDir, 'rules-'));
        const passwordFile = join(dir, 'password');
        await writeFile(passwordFile, 'not-the-real-password\n');
        const configPath = join(dir, 'config.yaml');
        await writeFile(configPath, toYaml({ ...config, neo4j: { ...(config.neo4j as object), passwordFile } }));
        const { stdout } = await execFileAsync(process.execPath, cliArgv(['rules', '--config', configPath]), {
          cwd: repoRoot,
          env: { ...process.env, NEO4J_URI: '', NEO4J_PASSWORD: '', NEO4J_PASSWORD_FILE: '' },
        });
        const fromCli = parseYaml(stdout) as { groups: unknown[] };
        assert.ok(fromCli.groups.length > 0);
        assert.deepEqual((rule.spec as { groups: unknown[] }).groups, fromCli.groups);

        const ruleFile = join(dir, 'rules.yaml');
        await writeFile(ruleFile, toYaml(rule.spec));
        const checked = await runPromtool(['check', 'rules', ruleFile]);
        assert.equal(checked.code, 0, `${checked.stdout}${checked.stderr}`);
      });

      it('packs the dashboards from dashboards/ into ConfigMaps labelled grafana_dashboard: "1"', async () => {
        const dashboardMaps = objects.filter((o) => o.kind === 'ConfigMap' && o.metadata.labels?.grafana_dashboard);
        if (!(values.dashboards as { enabled: boolean }).enabled) {
          assert.equal(dashboardMaps.length, 0);
          return;
        }
        const names = (await import('./support/dashboards.ts')).dashboardFiles;
        const files = await names();
        assert.equal(dashboardMaps.length, files.length);
        for (const map of dashboardMaps) {
          assert.equal(map.metadata.labels?.grafana_dashboard, '1');
          const [file, content] = Object.entries(map.data ?? {})[0] ?? [];
          assert.ok(file && files.includes(file), `${file} is one of dashboards/`);
          assert.equal(`${content}\n`, await readFile(join(repoRoot, 'dashboards', file), 'utf8'));
        }
      });
    });
  }

  it('keeps the chart default thresholds equal to the sidecar defaults', async () => {
    const values = parseYaml(await readFile(join(chartDir, 'values.yaml'), 'utf8')) as {
      config: { alerts: unknown };
    };
    assert.deepEqual(values.config.alerts, configSchema.parse({}).alerts);
  });

  it('with census.enabled false renders no census instance and leaves the census as config says', async () => {
    for (const [set, expected] of [
      [[], true],
      [['--set', 'config.probes.census.enabled=false'], false],
    ] as const) {
      const objects = await render({ name: 'no census instance' }, ['--set', 'census.enabled=false', ...set]);
      assert.equal(objects.filter(isCensus).length, 0, 'no census objects');
      assert.equal(objects.filter((o) => o.metadata.labels?.[COMPONENT] === 'census-metrics').length, 0);
      assert.equal(censusEnabled(configFileOf(objects)) ?? true, expected);
    }
  });

  it('refuses a plain password in values', async () => {
    await assert.rejects(
      render({ name: 'plain password' }, ['--set', 'config.neo4j.password=hunter2']),
      /additional properties 'password' not allowed|do not put a password in values/,
    );
  });

  it('mounts the admin token Secret and points http.adminTokenFile at it, and takes no token file in values', async () => {
    const objects = await render({ name: 'admin token' }, ['--set', 'adminToken.existingSecret=sidecar-admin']);
    assert.equal(
      (configFileOf(objects).http as Record<string, unknown>).adminTokenFile,
      '/var/run/secrets/neo4j-pool-sidecar-admin/token',
    );
    const workloads = objects.filter((o) => o.kind === 'Deployment');
    assert.ok(workloads.length > 0);
    for (const workload of workloads) {
      const pod = (workload.spec as { template: { spec: PodSpec } }).template.spec;
      const volume = pod.volumes?.find((v) => v.name === 'neo4j-pool-sidecar-admin-token');
      assert.equal(volume?.secret?.secretName, 'sidecar-admin', workload.metadata.name);
      assert.deepEqual(
        volume?.secret?.items?.map((item) => item.key),
        ['token'],
      );
      const container = [...pod.containers, ...(pod.initContainers ?? [])].find((c) => c.name === 'neo4j-pool-sidecar');
      assert.ok(
        container?.volumeMounts?.some(
          (m) =>
            m.name === 'neo4j-pool-sidecar-admin-token' && m.mountPath === '/var/run/secrets/neo4j-pool-sidecar-admin',
        ),
        workload.metadata.name,
      );
    }
    const without = await render({ name: 'no admin token' });
    assert.equal((configFileOf(without).http as Record<string, unknown>).adminTokenFile, undefined);
    assert.ok(!JSON.stringify(without).includes('neo4j-pool-sidecar-admin-token'));
    await assert.rejects(
      render({ name: 'token file in values' }, ['--set', 'config.http.adminTokenFile=/tmp/token']),
      /additional properties 'adminTokenFile' not allowed|set by the chart from adminToken/,
    );
  });

  it('gives pods terminationGracePeriodSeconds to cover proxy.shutdownGraceMs and the rest of the stop', async () => {
    const graceOf = (objects: K8sObject[]) =>
      podSpecs(objects.filter((o) => o.kind === 'Deployment')).map(
        ({ owner, pod }) => [owner.metadata.name, pod.terminationGracePeriodSeconds] as const,
      );
    const example = ['--set', 'exampleWorker.enabled=true'];
    // Default 10 s of drain plus 5 s to close the rest stays under Kubernetes' own 30 s, which is kept.
    for (const [name, seconds] of graceOf(await render({ name: 'default grace' }, example)))
      assert.equal(seconds, 30, name);
    const long = await render({ name: 'long grace' }, [...example, '--set-json', 'config.proxy.shutdownGraceMs=60500']);
    const graces = graceOf(long);
    assert.ok(graces.length >= 2, 'the census and the example worker');
    for (const [name, seconds] of graces) assert.equal(seconds, 66, name);
  });

  it("validates config against the sidecar's own schema, so a typo fails the install, not the pod", async () => {
    await assert.rejects(
      render({ name: 'misspelt threshold' }, ['--set', 'config.alerts.thresholds.poolUtilisation.warning=1']),
      /additional properties 'poolUtilisation' not allowed/,
    );
    await assert.rejects(
      render({ name: 'ratio above 1' }, ['--set-json', 'config.alerts.thresholds.poolUtilization.warning=1.5']),
      /poolUtilization\/warning/,
    );
    await assert.rejects(render({ name: 'bad mode' }, ['--set', 'sidecarMode=sometimes']), /sidecarMode/);
  });

  it("is usable from a user's own chart through its named templates", async () => {
    const userChart = join(workDir, 'my-worker');
    await mkdir(join(userChart, 'templates'), { recursive: true });
    await cp(chartDir, join(workDir, 'neo4j-pool-sidecar'), { recursive: true });
    await writeFile(
      join(userChart, 'Chart.yaml'),
      toYaml({
        apiVersion: 'v2',
        name: 'my-worker',
        version: '1.0.0',
        dependencies: [{ name: 'neo4j-pool-sidecar', version: '0.1.0', repository: 'file://../neo4j-pool-sidecar' }],
      }),
    );
    await writeFile(join(userChart, 'values.yaml'), toYaml({ 'neo4j-pool-sidecar': { sidecarMode: 'auto' } }));
    await writeFile(
      join(userChart, 'templates', 'deployment.yaml'),
      `{{- $sidecar := index .Subcharts "neo4j-pool-sidecar" }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: my-worker
spec:
  selector:
    matchLabels: {app: my-worker}
  template:
    metadata:
      labels:
        app: my-worker
        {{- include "neo4j-pool-sidecar.podLabels" $sidecar | nindent 8 }}
      annotations:
        {{- include "neo4j-pool-sidecar.podAnnotations" $sidecar | nindent 8 }}
    spec:
      terminationGracePeriodSeconds: {{ include "neo4j-pool-sidecar.terminationGracePeriodSeconds" $sidecar }}
      initContainers:
        {{- include "neo4j-pool-sidecar.initContainers" $sidecar | nindent 8 }}
      containers:
        - name: worker
          image: my-worker:1.0
          env:
            - name: NEO4J_URI
              value: bolt://127.0.0.1:7687
        {{- include "neo4j-pool-sidecar.regularContainer" $sidecar | nindent 8 }}
      volumes:
        {{- include "neo4j-pool-sidecar.volumes" $sidecar | nindent 8 }}
`,
    );
    await helmRun(['dependency', 'build', userChart], workDir);
    for (const [kubeVersion, native] of [
      ['1.31.0', true],
      ['1.28.0', false],
    ] as const) {
      const { stdout } = await helmRun(
        ['template', 'w', userChart, '--namespace', NAMESPACE, '--kube-version', kubeVersion],
        workDir,
      );
      const objects = parseAllDocuments(stdout)
        .map((doc) => doc.toJS() as K8sObject | null)
        .filter((doc): doc is K8sObject => doc !== null);
      const [{ pod, labels }] = podSpecs(objects.filter((o) => o.metadata.name === 'my-worker')) as [
        ReturnType<typeof podSpecs>[number],
      ];
      const sidecar = sidecarOf(pod);
      assert.equal(sidecar.native, native, `Kubernetes ${kubeVersion}`);
      assert.equal(pod.terminationGracePeriodSeconds, 30);
      assertSidecarContainer(sidecar.container, { ports: { metrics: 9464 } });
      const service = objects.find((o) => o.kind === 'Service' && o.metadata.labels?.[COMPONENT] === 'metrics')!;
      assert.ok(matches((service.spec as { selector: Record<string, string> }).selector, labels));
      assert.ok(objects.some((o) => o.kind === 'ConfigMap' && o.data?.['config.yaml']));
      assert.equal(
        censusEnabled(configFileOf(objects)),
        false,
        "the user's worker sidecar leaves the census to the census instance",
      );
      assert.equal(objects.filter((o) => o.kind === 'Deployment' && isCensus(o)).length, 1);
    }
  });
});
