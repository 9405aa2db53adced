/**
 * GET /metrics (the seed's test_health_metrics): every metric of API.md with its type and
 * labels, values that move as requests flow, route labels that are templates (never raw
 * URLs), no key or prompt in any label, and METRICS_TOKEN protecting the endpoint.
 */
import { randomUUID } from 'node:crypto';
import { mockCompletion } from '../src/modules/providers/mock-answers';
import { UNMATCHED_ROUTE } from '../src/infra/metrics/metric-names';
import { startTestApp, type TestApp } from './harness/app';
import { describeInProcess, isRemote } from './harness/environment';
import { adminAuth, createKey } from './harness/keys';
import { listenOnLoopback, postThenDisconnect } from './harness/listen';
import { type Exposition, parseExposition, sampleSum, sampleValue } from './harness/prometheus';
import { closedPortUrl } from './fakes/fake-server';
import { generationParams } from './fakes/model-config';

jest.setTimeout(30_000);

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';

/** Route templates the server registers, plus the one value shared by unknown routes. */
const KNOWN_ROUTES = new Set([
  '/healthz',
  '/readyz',
  '/metrics',
  '/v1/generate',
  '/v1/models',
  '/admin/keys',
  '/admin/keys/:id',
  '/admin/keys/:id/rotate',
  '/admin/keys/:id/usage',
  UNMATCHED_ROUTE,
]);

/**
 * The metrics of API.md ("Health and metrics"), written out here rather than read from
 * src/infra/metrics/metric-names.ts, which the server itself exports from: a metric renamed, retyped
 * or relabelled there must fail this test. Types follow the names: `_total` counters, durations
 * histograms, `_up` and in-flight gauges.
 */
const SPEC_METRICS: ReadonlyArray<{ name: string; type: 'counter' | 'gauge' | 'histogram'; labels: string[] }> = [
  { name: 'http_requests_total', type: 'counter', labels: ['method', 'route', 'status_code'] },
  { name: 'http_request_duration_seconds', type: 'histogram', labels: ['method', 'route', 'status_code'] },
  { name: 'llm_requests_total', type: 'counter', labels: ['model', 'provider', 'outcome'] },
  { name: 'llm_request_duration_seconds', type: 'histogram', labels: ['model', 'provider'] },
  { name: 'llm_time_to_first_token_seconds', type: 'histogram', labels: ['model', 'provider'] },
  { name: 'llm_tokens_total', type: 'counter', labels: ['model', 'type'] },
  { name: 'llm_cache_requests_total', type: 'counter', labels: ['model', 'result'] },
  { name: 'llm_backend_up', type: 'gauge', labels: ['model', 'upstream'] },
  { name: 'llm_in_flight_requests', type: 'gauge', labels: ['model'] },
  { name: 'rate_limit_rejections_total', type: 'counter', labels: ['reason'] },
  { name: 'quota_rejections_total', type: 'counter', labels: ['type'] },
];

let app: TestApp;
let key: string;

async function scrape(): Promise<Exposition> {
  const res = await app.http().get('/metrics').set('Authorization', `Bearer ${METRICS_TOKEN}`);
  expect(res.status).toBe(200);
  return parseExposition(res.text);
}

function generate(body: Record<string, unknown>) {
  return app.http().post('/v1/generate').set('X-API-Key', key).send(body);
}

beforeAll(async () => {
  const closed = isRemote ? '' : await closedPortUrl();
  app = await startTestApp({
    env: { METRICS_TOKEN },
    modelsYaml: `default_model: mock-a
models:
  - name: mock-a
    provider: mock
    max_new_tokens: 64
    default_max_new_tokens: 16
    required: true
  - name: mock-b
    provider: mock
  - name: quick-timeout
    provider: mock
    timeout_ms: 150
  - name: dead-vllm
    provider: vllm
    upstream_model: m
    base_url: ${closed || 'http://127.0.0.1:9'}
    fallbacks: [mock-b]
`,
  });
  key = (await createKey(app)).key;
});
afterAll(async () => {
  await app.close();
});

describeInProcess('GET /metrics', 'sets METRICS_TOKEN and its own models', () => {
  it('needs the metrics token when METRICS_TOKEN is set, answering in the error envelope', async () => {
    const missing = await app.http().get('/metrics');
    expect(missing.status).toBe(401);
    expect(missing.body.error).toMatchObject({ code: 'missing_metrics_token', type: 'authentication_error' });
    const wrong = await app.http().get('/metrics').set('Authorization', 'Bearer not-the-token');
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('invalid_metrics_token');
    // An API key is not a metrics token.
    const apiKey = await app.http().get('/metrics').set('Authorization', `Bearer ${key}`);
    expect(apiKey.status).toBe(401);

    const ok = await app.http().get('/metrics').set('Authorization', `Bearer ${METRICS_TOKEN}`);
    expect(ok.status).toBe(200);
    expect(ok.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it('exports every metric of API.md with its type and labels, and the Node process defaults', async () => {
    await app.http().get('/readyz'); // probes the required model: llm_backend_up gets its series
    const m = await scrape();
    for (const definition of SPEC_METRICS) {
      expect({ name: definition.name, type: m.types.get(definition.name) }).toEqual({
        name: definition.name,
        type: definition.type,
      });
      expect({ name: definition.name, labels: [...(m.labelNames.get(definition.name) ?? [])].sort() }).toEqual({
        name: definition.name,
        labels: [...definition.labels].sort(),
      });
    }
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(m.types.has(name)).toBe(true);
    }
    expect(sampleValue(m, 'llm_backend_up', { model: 'mock-a', upstream: 'mock' })).toBe(1);
  });

  it('counts HTTP requests by method, route template and status, errors from guards, body checks and the router included', async () => {
    const before = await scrape();
    const unknownId = randomUUID();
    const secretPath = `/nope/${randomUUID()}`;
    await app.http().get(`/admin/keys/${unknownId}`).set('Authorization', 'Bearer wrong'); // guard: 401
    await app
      .http()
      .get(`/admin/keys/${randomUUID()}`)
      .set(...adminAuth()); // 404
    await app.http().get(`${secretPath}?q=1`); // router: 404
    await app.http().delete('/healthz'); // no DELETE route: 404
    await app.http().post('/v1/generate').send({ prompt: 'hi' }); // guard: 401
    await app
      .http()
      .post('/v1/generate')
      .set('X-API-Key', key)
      .set('Content-Type', 'application/json')
      .send('{"prompt":'); // body: 400
    const after = await scrape();

    const delta = (labels: Record<string, string>): number =>
      sampleSum(after, 'http_requests_total', labels) - sampleSum(before, 'http_requests_total', labels);
    expect(delta({ method: 'GET', route: '/admin/keys/:id', status_code: '401' })).toBe(1);
    expect(delta({ method: 'GET', route: '/admin/keys/:id', status_code: '404' })).toBe(1);
    expect(delta({ method: 'GET', route: UNMATCHED_ROUTE, status_code: '404' })).toBe(1);
    expect(delta({ method: 'DELETE', route: UNMATCHED_ROUTE, status_code: '404' })).toBe(1);
    expect(delta({ method: 'POST', route: '/v1/generate', status_code: '401' })).toBe(1);
    expect(delta({ method: 'POST', route: '/v1/generate', status_code: '400' })).toBe(1);
    expect(delta({ method: 'GET', route: '/metrics', status_code: '200' })).toBe(1); // the first scrape

    // The histogram counts the same requests.
    const histogramDelta =
      sampleSum(after, 'http_request_duration_seconds_count', { route: '/admin/keys/:id' }) -
      sampleSum(before, 'http_request_duration_seconds_count', { route: '/admin/keys/:id' });
    expect(histogramDelta).toBe(2);

    const routes = new Set(after.samples.filter((s) => s.name.startsWith('http_')).map((s) => s.labels.route));
    for (const route of routes) expect(KNOWN_ROUTES).toContain(route);
    const text = JSON.stringify(after.samples);
    expect(text).not.toContain(unknownId);
    expect(text).not.toContain(secretPath);
  });

  it('puts no API key, prompt or URL in any label', async () => {
    const prompt = `[mock:echo] secret-prompt-${randomUUID()}`;
    expect((await generate({ prompt })).status).toBe(200);
    expect((await generate({ prompt, stream: true })).status).toBe(200);
    const m = await scrape();
    const values = m.samples.flatMap((s) => Object.values(s.labels));
    for (const value of values) {
      expect(value).not.toContain(key);
      expect(value).not.toContain('secret-prompt');
      expect(value).not.toMatch(/^[a-z]+:\/\//);
      expect(value).not.toContain('?');
    }
  });

  it('counts rate-limit rejections by reason and quota rejections by type', async () => {
    const before = await scrape();
    const limited = await createKey(app, { name: 'one per minute', rpm_limit: 1 });
    const send = (apiKey: string) =>
      app.http().post('/v1/generate').set('X-API-Key', apiKey).send({ prompt: 'limits' });
    expect((await send(limited.key)).status).toBe(200);
    expect((await send(limited.key)).status).toBe(429);
    const quota = await createKey(app, { name: 'one per month', monthly_quota: 1 });
    expect((await send(quota.key)).status).toBe(200);
    expect((await send(quota.key)).status).toBe(402);
    const after = await scrape();
    const d = (name: string, labels: Record<string, string>): number =>
      sampleSum(after, name, labels) - sampleSum(before, name, labels);
    expect(d('rate_limit_rejections_total', { reason: 'rpm' })).toBe(1);
    expect(d('rate_limit_rejections_total', { reason: 'tpm' })).toBe(0);
    expect(d('quota_rejections_total', { type: 'requests' })).toBe(1);
    expect(d('quota_rejections_total', { type: 'tokens' })).toBe(0);
  });

  describe('LLM metrics as generations flow', () => {
    it('counts successes with their duration and tokens, by serving model and provider', async () => {
      const before = await scrape();
      const res = await generate({ prompt: 'count my tokens', max_new_tokens: 10 });
      expect(res.status).toBe(200);
      const after = await scrape();
      const d = (name: string, labels: Record<string, string>): number =>
        sampleSum(after, name, labels) - sampleSum(before, name, labels);
      expect(d('llm_requests_total', { model: 'mock-a', provider: 'mock', outcome: 'success' })).toBe(1);
      expect(d('llm_request_duration_seconds_count', { model: 'mock-a', provider: 'mock' })).toBe(1);
      expect(d('llm_tokens_total', { model: 'mock-a', type: 'prompt' })).toBe(res.body.usage.prompt_tokens);
      expect(d('llm_tokens_total', { model: 'mock-a', type: 'completion' })).toBe(res.body.usage.completion_tokens);
      expect(res.body.usage.completion_tokens).toBe(
        mockCompletion(generationParams({ prompt: 'count my tokens', maxNewTokens: 10 })).usage.completionTokens,
      );
      expect(sampleValue(after, 'llm_in_flight_requests', { model: 'mock-a' })).toBe(0);
    });

    it('observes time to first token for streams, and shows streams in flight', async () => {
      const before = await scrape();
      const base = await listenOnLoopback(app);
      const streaming = fetch(`${base}/v1/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': key },
        body: JSON.stringify({ prompt: '[mock:slow:150][mock:echo] a b c', stream: true }),
      });
      const res = await streaming;
      const reader = res.body!.getReader();
      await reader.read(); // the first event arrived: the stream is in flight
      expect(sampleValue(await scrape(), 'llm_in_flight_requests', { model: 'mock-a' })).toBe(1);
      while (!(await reader.read()).done);
      const after = await scrape();
      const d = (name: string, labels: Record<string, string>): number =>
        sampleSum(after, name, labels) - sampleSum(before, name, labels);
      expect(d('llm_time_to_first_token_seconds_count', { model: 'mock-a', provider: 'mock' })).toBe(1);
      expect(d('llm_requests_total', { model: 'mock-a', outcome: 'success' })).toBe(1);
      expect(d('llm_tokens_total', { model: 'mock-a', type: 'completion' })).toBe(3);
      expect(sampleValue(after, 'llm_in_flight_requests', { model: 'mock-a' })).toBe(0);
    });

    it('counts failures by outcome: error, unavailable, timeout, and a fallback under the model that served', async () => {
      const before = await scrape();
      expect((await generate({ prompt: '[mock:error] x' })).status).toBe(502);
      expect((await generate({ prompt: '[mock:unreachable] x', model: 'mock-b' })).status).toBe(503);
      expect((await generate({ prompt: '[mock:hang] x', model: 'quick-timeout' })).status).toBe(504);
      expect((await generate({ prompt: 'served by the fallback', model: 'dead-vllm' })).body.model).toBe('mock-b');
      const after = await scrape();
      const d = (labels: Record<string, string>): number =>
        sampleSum(after, 'llm_requests_total', labels) - sampleSum(before, 'llm_requests_total', labels);
      expect(d({ model: 'mock-a', outcome: 'error' })).toBe(1);
      expect(d({ model: 'mock-b', outcome: 'unavailable' })).toBe(1);
      expect(d({ model: 'quick-timeout', outcome: 'timeout' })).toBe(1);
      expect(d({ model: 'mock-b', provider: 'mock', outcome: 'success' })).toBe(1);
      expect(d({ model: 'dead-vllm', outcome: 'success' })).toBe(0);
    });

    it('counts a stream the client cut off as aborted', async () => {
      const before = await scrape();
      const base = await listenOnLoopback(app);
      await postThenDisconnect(
        base,
        '/v1/generate',
        { 'x-api-key': key },
        { prompt: '[mock:slow:100][mock:echo] a b c d e f', stream: true },
        250,
      );
      let after = before;
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        after = await scrape();
        if (sampleValue(after, 'llm_in_flight_requests', { model: 'mock-a' }) === 0) break;
      }
      expect(
        sampleSum(after, 'llm_requests_total', { model: 'mock-a', outcome: 'aborted' }) -
          sampleSum(before, 'llm_requests_total', { model: 'mock-a', outcome: 'aborted' }),
      ).toBe(1);
    });
  });
});

describe('GET /metrics in any deployment', () => {
  it('is Prometheus text', async () => {
    const res = await app
      .http()
      .get('/metrics')
      .set('Authorization', `Bearer ${process.env.METRICS_TOKEN ?? METRICS_TOKEN}`);
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/^# HELP /m);
    expect(res.text).toMatch(/^# TYPE http_requests_total counter$/m);
  });
});
