/**
 * deploy/grafana and deploy/prometheus: the dashboard is valid Grafana JSON whose every query
 * names only metrics the server exports (a renamed metric would silently empty a panel), it
 * covers what operators need, and Prometheus scrapes the api service's /metrics.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  allPanels,
  DEPLOY,
  dashboardQueries,
  exportedMetricNames,
  loadDashboard,
  metricNamesIn,
} from './harness/promql';

const dashboard = loadDashboard();

function expressions(): string[] {
  return dashboardQueries(dashboard).map((query) => query.expr);
}

describe('the Grafana dashboard', () => {
  it('is a dashboard with a uid, a title and panels that all have a query', () => {
    expect(dashboard.uid).toBe('llm-server');
    expect(dashboard.title).toBe('LLM Server');
    const visible = allPanels(dashboard.panels).filter((panel) => panel.type !== 'row');
    expect(visible.length).toBeGreaterThan(10);
    for (const panel of visible)
      expect({ title: panel.title, queries: (panel.targets ?? []).length > 0 }).toEqual({
        title: panel.title,
        queries: true,
      });
  });

  it('only queries metrics the server exports', async () => {
    const exported = await exportedMetricNames();
    const used = new Set(expressions().flatMap(metricNamesIn));
    expect(used.size).toBeGreaterThan(5);
    const unknown = [...used].filter((name) => !exported.has(name));
    expect(unknown).toEqual([]);
  });

  it('covers requests, errors, latency, TTFT, tokens, cache, rate limits, quotas and backend health', () => {
    const used = new Set(expressions().flatMap(metricNamesIn));
    for (const name of [
      'http_requests_total',
      'http_request_duration_seconds_bucket',
      'llm_requests_total',
      'llm_request_duration_seconds_bucket',
      'llm_time_to_first_token_seconds_bucket',
      'llm_tokens_total',
      'llm_cache_requests_total',
      'rate_limit_rejections_total',
      'quota_rejections_total',
      'llm_backend_up',
    ]) {
      expect(used).toContain(name);
    }
  });

  it('finds metric names in PromQL, and not functions, labels, strings or numbers', () => {
    expect(
      metricNamesIn(
        'histogram_quantile(0.99, sum by (le, model) (rate(x_bucket{model=~"$model", a="b c"}[$__rate_interval])))',
      ),
    ).toEqual(['x_bucket']);
    expect(metricNamesIn('sum(rate(a_total[5m])) / clamp_min(sum(rate(b_total[5m])), 1e-9)')).toEqual([
      'a_total',
      'b_total',
    ]);
    expect(metricNamesIn('label_values(llm_requests_total, model)')).toEqual(['llm_requests_total']);
  });
});

describe('the Prometheus and Grafana provisioning', () => {
  it('scrapes the api service on port 8000 at /metrics', () => {
    const config = parseYaml(readFileSync(join(DEPLOY, 'prometheus', 'prometheus.yml'), 'utf8')) as {
      scrape_configs: { job_name: string; metrics_path: string; static_configs: { targets: string[] }[] }[];
    };
    const job = config.scrape_configs.find((c) => c.job_name === 'llm-server')!;
    expect(job.metrics_path).toBe('/metrics');
    expect(job.static_configs.flatMap((c) => c.targets)).toEqual(['api:8000']);
  });

  it('provisions the Prometheus data source and loads dashboards from /var/lib/grafana/dashboards', () => {
    const datasources = parseYaml(
      readFileSync(join(DEPLOY, 'grafana', 'provisioning', 'datasources', 'prometheus.yml'), 'utf8'),
    ) as {
      datasources: { type: string; url: string }[];
    };
    expect(datasources.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
    const providers = parseYaml(
      readFileSync(join(DEPLOY, 'grafana', 'provisioning', 'dashboards', 'llm-server.yml'), 'utf8'),
    ) as {
      providers: { options: { path: string } }[];
    };
    expect(providers.providers[0].options.path).toBe('/var/lib/grafana/dashboards');
  });
});
