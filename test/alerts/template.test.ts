/**
 * The Prometheus template functions the alert descriptions use, checked against the outputs
 * Prometheus documents and produces (Go's %.4g), and the threshold section's validation.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { humanize, humanizeDuration, humanizePercentage, renderTemplate } from '../../src/alerts/index.ts';
import { formatSignificant } from '../../src/alerts/template.ts';
import { parsePrometheusDuration } from '../../src/config/alerts.ts';
import { ConfigError, loadConfig } from '../../src/config/index.ts';

describe('Prometheus template functions', () => {
  it('format numbers like Go %.4g', () => {
    const cases: Array<[number, string]> = [
      [0, '0'],
      [1, '1'],
      [1.5, '1.5'],
      [0.1, '0.1'],
      [1234.5, '1234'],
      [12345, '1.234e+04'],
      [0.00012345, '0.0001234'],
      [0.000012345, '1.234e-05'],
      [-2.5, '-2.5'],
      [Number.NaN, 'NaN'],
      [Number.POSITIVE_INFINITY, '+Inf'],
    ];
    for (const [value, expected] of cases) assert.equal(formatSignificant(value), expected, String(value));
  });

  it('humanize, humanizeDuration and humanizePercentage as Prometheus does', () => {
    assert.equal(humanize(1234567), '1.235M');
    assert.equal(humanize(0.05), '50m');
    assert.equal(humanize(0.000123), '123u');
    assert.equal(humanize(999), '999');
    assert.equal(humanize(0), '0');
    assert.equal(humanizeDuration(0), '0s');
    assert.equal(humanizeDuration(0.25), '250ms');
    assert.equal(humanizeDuration(0.0001), '100us');
    assert.equal(humanizeDuration(3.5), '3.5s');
    assert.equal(humanizeDuration(60), '1m 0s');
    assert.equal(humanizeDuration(90.7), '1m 30s');
    assert.equal(humanizeDuration(3600 * 25 + 61), '1d 1h 1m 1s');
    assert.equal(humanizePercentage(0.1234), '12.34%');
    assert.equal(humanizePercentage(1), '100%');
  });

  it('render labels, values and label conditionals', () => {
    const template =
      'Pool {{ $labels.pool }}{{ if $labels.database }} of {{ $labels.database }}{{ end }}: {{ $value | humanizePercentage }} ({{ $labels.nope }})';
    assert.equal(
      renderTemplate(template, { pool: 'app', database: 'neo4j' }, 0.5),
      'Pool app of neo4j: 50% (<no value>)',
    );
    assert.equal(renderTemplate(template, { pool: 'app', database: '' }, 0.5), 'Pool app: 50% (<no value>)');
    assert.throws(() => renderTemplate('{{ $value | title }}', {}, 1), /unsupported template expression/);
  });
});

describe('the alerts and probes config sections', () => {
  function issues(yaml: string): string {
    try {
      loadConfig({ file: 'sidecar.yaml', env: {}, readFile: () => yaml });
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      return error.message;
    }
    assert.fail('the configuration was accepted');
  }

  it('parse Prometheus durations', () => {
    assert.equal(parsePrometheusDuration('1m30s'), 90_000);
    assert.equal(parsePrometheusDuration('0s'), 0);
    assert.equal(parsePrometheusDuration('2h'), 7_200_000);
    assert.throws(() => parsePrometheusDuration('90 seconds'));
  });

  it('refuse bad thresholds, naming each option', () => {
    const message = issues(
      'alerts:\n  thresholds:\n    poolUtilization: { warning: 1.5, for: soon }\n    connectionChurn: { window: 10s }\n  prometheus:\n    selector: "job=neo4j"\n    namePrefix: neo4j-pool\n',
    );
    assert.match(message, /alerts\.thresholds\.poolUtilization\.warning/);
    assert.match(message, /alerts\.thresholds\.poolUtilization\.for.*Prometheus duration/);
    assert.match(message, /alerts\.thresholds\.connectionChurn\.window.*at least 30s/);
    assert.match(message, /alerts\.prometheus\.selector.*label matchers/);
    assert.match(message, /alerts\.prometheus\.namePrefix.*CamelCase/);
    assert.match(issues('alerts:\n  thresholds:\n    probeDown: { warnng: 5 }\n'), /probeDown\.warnng.*unknown option/);
  });

  it('refuse a probe timeout that would let runs overlap the schedule', () => {
    const message = issues("probes:\n  schedule: '*/5 * * * * *'\n  timeoutMs: 2500\n  jitterMs: 500\n");
    assert.match(message, /probes\.timeoutMs.*5700 ms.*shorter than the schedule interval \(5000 ms\)/);
    assert.match(issues("probes:\n  schedule: 'every minute'\n"), /probes\.schedule.*not a valid cron expression/);
    const accepted = loadConfig({
      file: 'sidecar.yaml',
      env: {},
      readFile: () => "probes:\n  schedule: '*/30 * * * * *'\n  timeoutMs: 10000\n",
    });
    assert.equal(accepted.probes.timeoutMs, 10000);
  });
});
