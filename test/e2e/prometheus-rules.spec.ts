/**
 * deploy/prometheus/alerts.yml: every alert is well-formed (severity, summary, runbook), watches
 * only metrics the server exports, has a firing and a quiet unit test in alerts.test.yml and a
 * line in docs/operations.md; promtool accepts the rules, the configuration, and passes the unit tests.
 * The last tests break copies of the files to show each check fails when it should.
 *
 * Adding an alert for a new metric: the metric in src/infra/metrics/metric-names.ts, the rule in
 * alerts.yml, its two unit tests in alerts.test.yml and its line in docs/operations.md; the live check
 * (prometheus-live.e2e-spec.ts) then requires the traffic run to give it data.
 */
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  ALERT_TESTS_FILE,
  ALERTS_FILE,
  comparisonsAsBool,
  DEPLOY,
  exportedMetricNames,
  loadAlerts,
  metricNamesIn,
} from '../harness/promql';
import { describeWithPrometheus, promtool } from '../harness/promtool';

const alerts = loadAlerts();
/** Series Prometheus makes itself, not the server. */
const PROMETHEUS_SERIES = new Set(['up']);

interface UnitTests {
  rule_files: string[];
  tests: { name: string; alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
}
const unitTests = parseYaml(readFileSync(ALERT_TESTS_FILE, 'utf8')) as UnitTests;

describe('the alert rules', () => {
  it('are a dozen or so alerts with unique LlmServer* names', () => {
    expect(alerts.length).toBeGreaterThanOrEqual(10);
    const names = alerts.map((rule) => rule.alert);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(name).toMatch(/^LlmServer[A-Z][A-Za-z0-9]+$/);
  });

  it('each have a severity, a summary and a one-line runbook', () => {
    for (const rule of alerts) {
      expect({ alert: rule.alert, severity: rule.labels?.severity }).toEqual({
        alert: rule.alert,
        severity: expect.stringMatching(/^(critical|warning)$/),
      });
      expect({ alert: rule.alert, summary: rule.annotations?.summary }).toEqual({
        alert: rule.alert,
        summary: expect.any(String),
      });
      // Plain text: the runbook is the same for every firing of the alert.
      expect({ alert: rule.alert, runbook: rule.annotations?.runbook }).toEqual({
        alert: rule.alert,
        runbook: expect.stringMatching(/^[^\n{}]{20,}$/),
      });
    }
  });

  it('watch only metrics the server exports (or Prometheus’ own up)', async () => {
    const exported = await exportedMetricNames();
    const unknown = alerts.flatMap((rule) =>
      metricNamesIn(rule.expr)
        .filter((name) => !exported.has(name) && !PROMETHEUS_SERIES.has(name))
        .map((name) => `${rule.alert}: ${name}`),
    );
    expect(unknown).toEqual([]);
    // The check itself sees a misspelt metric.
    expect(metricNamesIn('sum(rate(llm_request_total[5m])) > 0').filter((n) => !exported.has(n))).toEqual([
      'llm_request_total',
    ]);
  });

  it('each have a unit test where they fire and one where they stay quiet', () => {
    expect(unitTests.rule_files).toEqual(['alerts.yml']);
    const cases = unitTests.tests.flatMap((test) => test.alert_rule_test ?? []);
    const missing = alerts.flatMap((rule) => {
      const mine = cases.filter((c) => c.alertname === rule.alert);
      return [
        ...(mine.some((c) => (c.exp_alerts ?? []).length > 0) ? [] : [`${rule.alert}: no test where it fires`]),
        ...(mine.some((c) => (c.exp_alerts ?? []).length === 0) ? [] : [`${rule.alert}: no test where it stays quiet`]),
      ];
    });
    expect(missing).toEqual([]);
    const known = new Set(alerts.map((rule) => rule.alert));
    expect(cases.map((c) => c.alertname).filter((name) => !known.has(name))).toEqual([]);
  });

  it('are each listed in the operations guide (docs/operations.md)', () => {
    const guide = readFileSync(join(__dirname, '..', '..', 'docs', 'operations.md'), 'utf8');
    expect(alerts.map((rule) => rule.alert).filter((name) => !guide.includes(`\`${name}\``))).toEqual([]);
  });
});

describe('comparisonsAsBool (how the live check sees the series behind an alert)', () => {
  it.each([
    ['up{job="llm-server"} == 0', 'up{job="llm-server"} == bool 0'],
    ['a{b!="c", d=~"e|f"} > 0.05 and x >= 1', 'a{b!="c", d=~"e|f"} > bool 0.05 and x >= bool 1'],
    ['max by (model) (m) <= 2 or n != 3', 'max by (model) (m) <= bool 2 or n != bool 3'],
    ['x{route!~"/a|/b"} < y', 'x{route!~"/a|/b"} < bool y'],
    ['x > bool 1', 'x > bool 1'],
    ['x{l="a>b"}', 'x{l="a>b"}'],
  ])('%s', (expr, expected) => {
    expect(comparisonsAsBool(expr)).toBe(expected);
  });
});

describeWithPrometheus('promtool', () => {
  const prometheusDir = join(DEPLOY, 'prometheus');

  it('accepts the alert rules', () => {
    const run = promtool(['check', 'rules', ALERTS_FILE]);
    expect({ code: run.code, output: run.output }).toEqual({ code: 0, output: expect.stringContaining('SUCCESS') });
  });

  it('passes every unit test of alerts.test.yml', () => {
    const run = promtool(['test', 'rules', 'alerts.test.yml'], { cwd: prometheusDir });
    expect({ code: run.code, output: run.output }).toEqual({ code: 0, output: expect.stringContaining('SUCCESS') });
  });

  it('accepts deploy/prometheus/prometheus.yml with its rule file', () => {
    const run = promtool(['check', 'config', join(prometheusDir, 'prometheus.yml')]);
    expect({ code: run.code, output: run.output }).toEqual({
      code: 0,
      output: expect.stringContaining(`SUCCESS: ${alerts.length} rules found`),
    });
  });

  /** A temp copy of the rules and their tests, with `edit` applied to the rules. */
  function brokenCopy(edit: (rules: string) => string): string {
    const dir = mkdtempSync(join(tmpdir(), 'llm-alerts-'));
    copyFileSync(ALERT_TESTS_FILE, join(dir, 'alerts.test.yml'));
    writeFileSync(join(dir, 'alerts.yml'), edit(readFileSync(ALERTS_FILE, 'utf8')));
    return dir;
  }

  it('fails on broken rules: bad syntax, a misspelt metric, a wrong label value, a wrong threshold', () => {
    const syntax = brokenCopy((rules) => rules.replace('expr: llm_gateway_ready == 0', 'expr: llm_gateway_ready == ('));
    expect(promtool(['check', 'rules', join(syntax, 'alerts.yml')]).code).not.toBe(0);

    for (const [what, edit] of [
      ['metric', (rules: string) => rules.replace('expr: llm_backend_up == 0', 'expr: llm_backends_up == 0')],
      ['label', (rules: string) => rules.replaceAll('reason=~"rpm|tpm"', 'reason=~"rpms|tpm"')],
      ['threshold', (rules: string) => rules.replace('reason="auth"}[5m])) > 0.2', 'reason="auth"}[5m])) > 0.6')],
    ] as const) {
      const dir = brokenCopy(edit);
      expect(readFileSync(join(dir, 'alerts.yml'), 'utf8')).not.toBe(readFileSync(ALERTS_FILE, 'utf8'));
      const run = promtool(['test', 'rules', 'alerts.test.yml'], { cwd: dir });
      expect({ what, code: run.code, failed: run.output.includes('FAILED') }).toEqual({ what, code: 1, failed: true });
    }
  });
});
