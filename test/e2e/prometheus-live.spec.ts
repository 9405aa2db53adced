/**
 * The gateway's metrics as a real Prometheus sees them: after mixed traffic (success, errors,
 * timeouts, unreachable upstreams, cache hits, streams, 401, 429, 402), `promtool check metrics`
 * accepts the scrape; then a Prometheus server (loopback, own port and data directory, 1 s
 * scrape and evaluation interval, the deploy/ configuration and alert rules) scrapes the gateway
 * while traffic runs, and every query of the Grafana dashboard and every alert expression must
 * return data through its HTTP API. A query that returns nothing is reported by its panel or
 * alert name: a misspelt metric, label or label value cannot hide in a panel or leave an alert
 * that can never fire.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { startTestApp, type TestApp } from '../harness/app';
import { describeInProcess } from '../harness/environment';
import { createKey } from '../harness/keys';
import { listenOnLoopback, postThenDisconnect } from '../harness/listen';
import {
  ALERTS_FILE,
  comparisonsAsBool,
  DEPLOY,
  dashboardQueries,
  labelValuesQuery,
  loadAlerts,
  loadDashboard,
  withoutGrafanaVariables,
} from '../harness/promql';
import { describeWithPrometheus, hasData, type PrometheusServer, promtool, startPrometheus } from '../harness/promtool';
import { closedPortUrl } from '../fakes/fake-server';
import { FakeVllm } from '../fakes/fake-vllm';

jest.setTimeout(120_000);

/**
 * `promtool check metrics` findings that are not ours: prom-client's default Node metrics name
 * three gauges `*_total`. Anything else it reports fails the test.
 */
const THIRD_PARTY_LINT = new Set([
  'nodejs_active_handles_total non-counter metrics should not have "_total" suffix',
  'nodejs_active_requests_total non-counter metrics should not have "_total" suffix',
  'nodejs_active_resources_total non-counter metrics should not have "_total" suffix',
]);
const SCRAPES_NEEDED = 5;

describeWithPrometheus('Prometheus against the running gateway', () => {
  describeInProcess('metrics, dashboard and alerts', 'runs fake upstreams and its own Prometheus', () => {
    let good: FakeVllm;
    let failing: FakeVllm;
    let app: TestApp;
    let base: string;
    let keys: { normal: string; limited: string; quota: string };
    let prometheus: PrometheusServer | null = null;

    beforeAll(async () => {
      good = await FakeVllm.start();
      failing = await FakeVllm.start();
      failing.setMode('fail', { status: 500 });
      const closed = await closedPortUrl();
      app = await startTestApp({
        env: { BACKEND_PROBE_INTERVAL_MS: '1000', AUTH_FAILURE_LIMIT: '2' },
        modelsYaml: `default_model: mock-a
models:
  - name: mock-a
    provider: mock
    max_new_tokens: 64
  - name: vllm-a
    provider: vllm
    upstream_model: m
    required: true
    max_in_flight: 4
    upstreams:
      - base_url: ${good.url}
      - base_url: ${closed}
  - name: vllm-failing
    provider: vllm
    upstream_model: m
    base_url: ${failing.url}
  - name: vllm-dead
    provider: vllm
    upstream_model: m
    base_url: ${closed}
`,
      });
      base = await listenOnLoopback(app);
      keys = {
        normal: (await createKey(app, { rpm_limit: 1_000_000 })).key,
        limited: (await createKey(app, { rpm_limit: 1 })).key,
        quota: (await createKey(app, { monthly_quota: 1, rpm_limit: 1_000_000, monthly_budget: 100 })).key,
      };
    });
    afterAll(async () => {
      await prometheus?.close();
      await app?.close();
      await good?.close();
      await failing?.close();
    });

    const post = (path: string, key: string, body: Record<string, unknown>) =>
      fetch(`${base}${path}`, {
        method: 'POST',
        headers: { 'x-api-key': key, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }).then(async (res) => {
        await res.text();
        return res.status;
      });
    const get = (path: string, key?: string) =>
      fetch(`${base}${path}`, { headers: key ? { 'x-api-key': key } : {} }).then(async (res) => {
        await res.text();
        return res.status;
      });

    /** One round of every kind of request; returns the statuses seen. */
    async function traffic(round: number): Promise<number[]> {
      const { normal, limited, quota } = keys;
      return [
        await post('/v1/generate', normal, { prompt: `fresh ${round}` }), // 200
        await post('/v1/generate', normal, { prompt: 'the same prompt' }), // cache hit after the first
        await post('/v1/generate', normal, { prompt: `stream ${round}`, stream: true }), // TTFT
        await post('/v1/completions', normal, { model: 'vllm-a', prompt: `vllm ${round}`, max_tokens: 8 }),
        await post('/v1/chat/completions', normal, { model: 'vllm-a', messages: [{ role: 'user', content: 'hi' }] }),
        await post('/v1/generate', normal, { model: 'vllm-a', prompt: `s ${round}`, stream: true }),
        await post('/v1/generate', normal, { model: 'vllm-failing', prompt: 'x' }), // 502
        await post('/v1/generate', normal, { model: 'vllm-dead', prompt: 'x' }), // 503
        await post('/v1/generate', limited, { prompt: 'x' }), // 200 once, then 429 rpm
        await post('/v1/generate', quota, { prompt: `q ${round}` }), // 200 once, then 402
        await post('/v1/generate', 'sk-not-a-key', { prompt: 'x' }), // 401, then 429 auth
        // The client leaves mid-generation: 499, an aborted call.
        await postThenDisconnect(
          base,
          '/v1/generate',
          { 'x-api-key': normal },
          { prompt: `[mock:slow:200] a b c ${round}` },
          50,
        ).then(() => 499),
        await get('/v1/models', normal),
        await get('/readyz'),
        await get('/no/such/route'),
      ];
    }

    it('serves the mixed traffic with every kind of answer', async () => {
      const statuses = new Set([...(await traffic(0)), ...(await traffic(1)), ...(await traffic(2))]);
      for (const status of [200, 401, 402, 404, 429, 502, 503]) expect(statuses).toContain(status);
    });

    it('exposes metrics promtool accepts (only known lint findings in prom-client’s defaults)', async () => {
      const scrape = await fetch(`${base}/metrics`).then((res) => res.text());
      expect(scrape).toContain('llm_cache_requests_total{model="mock-a",result="hit"}');
      const run = promtool(['check', 'metrics'], { input: scrape });
      const findings = run.output
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line !== '');
      expect(findings.filter((line) => !THIRD_PARTY_LINT.has(line))).toEqual([]);
      expect(run.code === 0 || (run.code === 3 && findings.length > 0)).toBe(true); // 3: lint findings only
    });

    it('is scraped by Prometheus with the deploy configuration and alert rules', async () => {
      const deployConfig = parseYaml(readFileSync(join(DEPLOY, 'prometheus', 'prometheus.yml'), 'utf8')) as {
        scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
      };
      const job = deployConfig.scrape_configs.find((config) => config.job_name === 'llm-server')!;
      prometheus = await startPrometheus({
        ...deployConfig,
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [ALERTS_FILE],
        scrape_configs: [{ ...job, static_configs: [{ targets: [new URL(base).host] }] }],
      });
      // Traffic keeps flowing until Prometheus has scraped it a few times.
      const deadline = Date.now() + 60_000;
      let round = 3;
      for (;;) {
        await traffic(round++);
        const scrapes = await prometheus.query(`count_over_time(up{job="llm-server"}[5m])`);
        const count = Number((scrapes.result as { value: [number, string] }[])[0]?.value[1] ?? 0);
        if (count >= SCRAPES_NEEDED) break;
        if (Date.now() > deadline) throw new Error(`only ${count} scrapes in 60 s`);
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      const up = await prometheus.query('up{job="llm-server"}');
      expect((up.result as { value: [number, string] }[]).map((sample) => sample.value[1])).toEqual(['1']);
    });

    /** The names of the queries that return no data (a query error counts as none, with its message). */
    async function withoutData(queries: { name: string; expr: string }[]): Promise<string[]> {
      const empty: string[] = [];
      for (const { name, expr } of queries) {
        try {
          if (!hasData(await prometheus!.query(expr))) empty.push(`${name}: ${expr}`);
        } catch (error) {
          empty.push(`${name}: ${(error as Error).message}`);
        }
      }
      return empty;
    }

    it('returns data for every query of the Grafana dashboard', async () => {
      // Each $variable takes the values its own label_values() query finds.
      const values: Record<string, string[]> = {};
      for (const variable of loadDashboard().templating.list) {
        const query = labelValuesQuery(variable.definition ?? '');
        if (!query) continue;
        values[variable.name] = await prometheus!.api<string[]>(
          `label/${query.label}/values?match[]=${encodeURIComponent(query.metric)}`,
        );
      }
      expect(values.model).toEqual(expect.arrayContaining(['mock-a', 'vllm-a']));
      const queries = dashboardQueries().map(({ name, expr }) => ({
        name,
        expr: withoutGrafanaVariables(expr, '1m', values),
      }));
      expect(queries.length).toBeGreaterThan(20);
      expect(await withoutData(queries)).toEqual([]);
    });

    it('returns data for every alert expression (the series behind each threshold)', async () => {
      const alerts = loadAlerts();
      const queries = alerts.map((rule) => ({ name: `alert ${rule.alert}`, expr: comparisonsAsBool(rule.expr) }));
      expect(await withoutData(queries)).toEqual([]);
    });

    it('loads and evaluates every alert rule without error', async () => {
      const expected = loadAlerts().map((rule) => rule.alert);
      const deadline = Date.now() + 10_000;
      let rules: { name: string; health: string; lastError?: string }[] = [];
      while (Date.now() < deadline) {
        const data = await prometheus!.api<{
          groups: { rules: { name: string; health: string; lastError?: string }[] }[];
        }>('rules?type=alert');
        rules = data.groups.flatMap((group) => group.rules);
        if (rules.length === expected.length && rules.every((rule) => rule.health !== 'unknown')) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(rules.map((rule) => rule.name).sort()).toEqual([...expected].sort());
      expect(rules.filter((rule) => rule.health !== 'ok')).toEqual([]);
    });

    it('reports a query with a misspelt metric, label or value by its name (the check can fail)', async () => {
      expect(
        await withoutData([
          { name: 'good', expr: 'sum(rate(llm_requests_total[1m]))' },
          { name: 'metric', expr: 'sum(rate(llm_request_total[1m]))' },
          { name: 'label', expr: 'sum(rate(llm_requests_total{modle=~"mock-a|vllm-a"}[1m]))' },
          { name: 'value', expr: comparisonsAsBool('sum(rate(llm_requests_total{outcome="eror"}[5m])) > 0') },
          { name: 'syntax', expr: 'sum(rate(llm_requests_total[1m])' },
        ]),
      ).toEqual([
        'metric: sum(rate(llm_request_total[1m]))',
        'label: sum(rate(llm_requests_total{modle=~"mock-a|vllm-a"}[1m]))',
        'value: sum(rate(llm_requests_total{outcome="eror"}[5m])) > bool 0',
        expect.stringMatching(/^syntax: prometheus \/api\/v1\/query\?query=.*: .*parse error/),
      ]);
    });
  });
});
