/**
 * What the dashboard and alert checks share: the queries of deploy/grafana and the alerts of
 * deploy/prometheus, the metric names a PromQL expression uses, the names the server exports,
 * and the rewriting that lets an alert expression be checked for data.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { parse as parseYaml } from 'yaml';
import type { AppConfig } from '../../src/infra/config/app.config';
import { HttpMetrics } from '../../src/infra/metrics/http-metrics';
import { LlmMetricsService } from '../../src/infra/metrics/llm-metrics.service';
import { MetricsModule } from '../../src/infra/metrics/metrics.module';
import { METRICS_REGISTRY } from '../../src/infra/metrics/metrics.registry';
import { ReadinessMetrics } from '../../src/infra/metrics/readiness-metrics';
import { modelConfig } from '../fakes/model-config';
import { parseExposition } from './prometheus';

export const DEPLOY = join(__dirname, '..', '..', 'deploy');

export interface Panel {
  type: string;
  title: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}

export interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; query?: unknown; definition?: string }[] };
}

export function loadDashboard(): Dashboard {
  return JSON.parse(readFileSync(join(DEPLOY, 'grafana', 'llm-server.json'), 'utf8')) as Dashboard;
}

export function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((panel) => [panel, ...allPanels(panel.panels ?? [])]);
}

/** Every query of the dashboard, named by where it is: panel titles and `$variables`. */
export function dashboardQueries(dashboard: Dashboard = loadDashboard()): { name: string; expr: string }[] {
  const fromPanels = allPanels(dashboard.panels).flatMap((panel) =>
    (panel.targets ?? []).map((target, i) => ({ name: `panel "${panel.title}" query ${i + 1}`, expr: target.expr })),
  );
  const fromVariables = dashboard.templating.list.flatMap((variable) =>
    variable.definition ? [{ name: `variable $${variable.name}`, expr: variable.definition }] : [],
  );
  return [...fromPanels, ...fromVariables];
}

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export const ALERTS_FILE = join(DEPLOY, 'prometheus', 'alerts.yml');
export const ALERT_TESTS_FILE = join(DEPLOY, 'prometheus', 'alerts.test.yml');

export function loadAlerts(file = ALERTS_FILE): AlertRule[] {
  const parsed = parseYaml(readFileSync(file, 'utf8')) as { groups: { rules: AlertRule[] }[] };
  return parsed.groups.flatMap((group) => group.rules).filter((rule) => rule.alert !== undefined);
}

/** Every metric name the server's /metrics can contain (histograms with their series suffixes). */
export async function exportedMetricNames(): Promise<Set<string>> {
  const module = MetricsModule.forRoot();
  const registry = (module.providers as { provide: unknown; useValue?: Registry }[]).find(
    (p) => p.provide === METRICS_REGISTRY,
  )!.useValue!;
  new HttpMetrics(registry);
  const config = { models: { defaultModel: 'a', models: [modelConfig({ name: 'a' })] } } as unknown as AppConfig;
  new LlmMetricsService(registry, config);
  new ReadinessMetrics(registry).answered(true); // llm_gateway_ready appears with the first /readyz answer
  const names = new Set<string>();
  for (const [name, type] of parseExposition(await registry.metrics()).types) {
    names.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${name}${suffix}`);
  }
  return names;
}

const PROMQL_WORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'offset',
  'bool',
  'inf',
  'nan',
]);

/** Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or strings. */
export function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/label_values\(([^,)]*),[^)]*\)/g, ' $1 ') // Grafana: label_values(metric, label)
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // strings
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' '); // label lists
  const names: string[] = [];
  for (const match of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = match[0];
    const rest = stripped.slice((match.index ?? 0) + word.length);
    if (/^\s*\(/.test(rest)) continue; // a function
    if (PROMQL_WORDS.has(word.toLowerCase())) continue;
    const before = stripped.slice(0, match.index);
    if (/\$\{?$/.test(before) || /\d$/.test(before)) continue; // a Grafana variable or a number like 1e-9
    names.push(word);
  }
  return names;
}

const COMPARISON = /^(==|!=|>=|<=|>|<)/;

/**
 * The expression with every comparison outside label matchers and strings turned into its
 * `bool` form (`x > 0.05` becomes `x > bool 0.05`): the series an alert watches, whether or not
 * its threshold is crossed right now. An alert whose rewritten expression returns nothing can
 * never fire (a misspelt metric or label value), which is what the live check looks for.
 */
export function comparisonsAsBool(expr: string): string {
  let out = '';
  let braces = 0;
  let quote: string | null = null;
  for (let i = 0; i < expr.length; i += 1) {
    const ch = expr[i];
    if (quote) {
      out += ch;
      if (ch === '\\') out += expr[++i] ?? '';
      else if (ch === quote) quote = null;
      continue;
    }
    if (ch === '"' || ch === "'" || ch === '`') quote = ch;
    else if (ch === '{') braces += 1;
    else if (ch === '}') braces -= 1;
    const op = braces === 0 && !quote ? COMPARISON.exec(expr.slice(i))?.[0] : undefined;
    if (op && !/^\s*bool\b/.test(expr.slice(i + op.length))) {
      out += `${op} bool`;
      i += op.length - 1;
      continue;
    }
    out += ch;
  }
  return out;
}

/** A Grafana `label_values(metric, label)` variable query, split; null for other queries. */
export function labelValuesQuery(expr: string): { metric: string; label: string } | null {
  const match = /^label_values\(\s*([^,]+?)\s*,\s*([a-zA-Z_]\w*)\s*\)$/.exec(expr.trim());
  return match ? { metric: match[1], label: match[2] } : null;
}

/**
 * A dashboard query as Prometheus can run it: `label_values(m, l)` as `count by (l) (m)`,
 * `$__rate_interval` as `rateInterval`, and each `$variable` as the alternation of its values
 * (`values[name]`): every value at once, like Grafana's "All", yet a matcher on a misspelt label
 * name selects nothing (the dashboard's own "All" value, `.*`, would also match the missing label).
 */
export function withoutGrafanaVariables(
  expr: string,
  rateInterval: string,
  values: Record<string, readonly string[]>,
): string {
  const labelValues = labelValuesQuery(expr);
  if (labelValues) return `count by (${labelValues.label}) (${labelValues.metric})`;
  return expr
    .replace(/\$__rate_interval|\$\{__rate_interval\}/g, rateInterval)
    .replace(/\$\{?([a-zA-Z_]\w*)\}?/g, (_, name: string) => {
      const list = values[name];
      if (!list || list.length === 0) throw new Error(`no values for the dashboard variable $${name}`);
      return list.map((value) => value.replace(/[.*+?^${}()|[\]\\]/g, '\\\\$&')).join('|');
    });
}
