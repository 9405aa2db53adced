/**
 * LlmMetricsService, the API the generation path calls, and the per-app registries: values
 * move exactly as documented, and two apps in one process never share or clash on metrics.
 */
import { register, Registry } from 'prom-client';
import type { AppConfig } from '../src/infra/config/app.config';
import { LlmMetricsService, outcomeForErrorCode } from '../src/infra/metrics/llm-metrics.service';
import { LLM_OUTCOMES, METRICS } from '../src/infra/metrics/metric-names';
import { MetricsModule } from '../src/infra/metrics/metrics.module';
import { METRICS_REGISTRY } from '../src/infra/metrics/metrics.registry';
import { parseExposition, sampleSum, sampleValue, type Exposition } from './harness/prometheus';
import { modelConfig } from './fakes/model-config';

function service(): { metrics: LlmMetricsService; read: () => Promise<Exposition> } {
  const registry = new Registry();
  const config = {
    models: {
      defaultModel: 'a',
      models: [modelConfig({ name: 'a', provider: 'vllm' }), modelConfig({ name: 'b', provider: 'ollama' })],
    },
  } as unknown as AppConfig;
  const metrics = new LlmMetricsService(registry, config);
  return { metrics, read: async () => parseExposition(await registry.metrics()) };
}

describe('LlmMetricsService', () => {
  it('creates every series of the configured models at zero, so dashboards see them before traffic', async () => {
    const { read } = service();
    const m = await read();
    for (const outcome of LLM_OUTCOMES) {
      expect(sampleValue(m, 'llm_requests_total', { model: 'a', provider: 'vllm', outcome })).toBe(0);
      expect(sampleValue(m, 'llm_requests_total', { model: 'b', provider: 'ollama', outcome })).toBe(0);
    }
    expect(sampleValue(m, 'llm_in_flight_requests', { model: 'a' })).toBe(0);
    expect(sampleValue(m, 'llm_tokens_total', { model: 'b', type: 'completion' })).toBe(0);
    expect(sampleValue(m, 'llm_cache_requests_total', { model: 'a', result: 'coalesced' })).toBe(0);
    expect(sampleValue(m, 'llm_request_duration_seconds_count', { model: 'a', provider: 'vllm' })).toBe(0);
    expect(sampleValue(m, 'rate_limit_rejections_total', { reason: 'tpm' })).toBe(0);
    expect(sampleValue(m, 'quota_rejections_total', { type: 'tokens' })).toBe(0);
  });

  it('counts a call, its duration, TTFT, tokens and in-flight state', async () => {
    const { metrics, read } = service();
    const call = metrics.startRequest('a', 'vllm');
    expect(sampleValue(await read(), 'llm_in_flight_requests', { model: 'a' })).toBe(1);
    call.firstToken();
    call.firstToken(); // only the first counts
    call.finish('success', { promptTokens: 5, completionTokens: 12 });
    call.finish('error'); // idempotent

    const m = await read();
    expect(sampleValue(m, 'llm_in_flight_requests', { model: 'a' })).toBe(0);
    expect(sampleValue(m, 'llm_requests_total', { model: 'a', provider: 'vllm', outcome: 'success' })).toBe(1);
    expect(sampleValue(m, 'llm_requests_total', { model: 'a', provider: 'vllm', outcome: 'error' })).toBe(0);
    expect(sampleValue(m, 'llm_request_duration_seconds_count', { model: 'a', provider: 'vllm' })).toBe(1);
    expect(sampleValue(m, 'llm_time_to_first_token_seconds_count', { model: 'a', provider: 'vllm' })).toBe(1);
    expect(sampleValue(m, 'llm_tokens_total', { model: 'a', type: 'prompt' })).toBe(5);
    expect(sampleValue(m, 'llm_tokens_total', { model: 'a', type: 'completion' })).toBe(12);
  });

  it('labels a call with the model that served it (a fallback), in-flight with the requested one', async () => {
    const { metrics, read } = service();
    const call = metrics.startRequest('a', 'vllm');
    call.servedBy('b', 'ollama');
    call.finish('success', { promptTokens: 1, completionTokens: 2 });
    const m = await read();
    expect(sampleValue(m, 'llm_requests_total', { model: 'b', provider: 'ollama', outcome: 'success' })).toBe(1);
    expect(sampleValue(m, 'llm_requests_total', { model: 'a', provider: 'vllm', outcome: 'success' })).toBe(0);
    expect(sampleValue(m, 'llm_tokens_total', { model: 'b', type: 'completion' })).toBe(2);
    expect(sampleValue(m, 'llm_in_flight_requests', { model: 'a' })).toBe(0);
    expect(sampleValue(m, 'llm_in_flight_requests', { model: 'b' })).toBe(0);
  });

  it('counts aborted calls without observing their duration', async () => {
    const { metrics, read } = service();
    metrics.startRequest('a', 'vllm').finish('aborted', { promptTokens: 3, completionTokens: 4 });
    const m = await read();
    expect(sampleValue(m, 'llm_requests_total', { model: 'a', provider: 'vllm', outcome: 'aborted' })).toBe(1);
    expect(sampleValue(m, 'llm_request_duration_seconds_count', { model: 'a', provider: 'vllm' })).toBe(0);
    expect(sampleValue(m, 'llm_tokens_total', { model: 'a', type: 'completion' })).toBe(4);
  });

  it('counts cache results, rejections and backend states', async () => {
    const { metrics, read } = service();
    metrics.cacheResult('a', 'hit');
    metrics.cacheResult('a', 'hit');
    metrics.cacheResult('a', 'miss');
    metrics.rateLimitRejected('rpm');
    metrics.quotaRejected('requests');
    metrics.backendUp('a', 'vllm-0:8000', true);
    metrics.backendUp('a', 'vllm-1:8000', true);
    metrics.backendUp('a', 'vllm-1:8000', false);
    const m = await read();
    expect(sampleValue(m, 'llm_cache_requests_total', { model: 'a', result: 'hit' })).toBe(2);
    expect(sampleValue(m, 'llm_cache_requests_total', { model: 'a', result: 'miss' })).toBe(1);
    expect(sampleValue(m, 'rate_limit_rejections_total', { reason: 'rpm' })).toBe(1);
    expect(sampleValue(m, 'quota_rejections_total', { type: 'requests' })).toBe(1);
    expect(sampleValue(m, 'llm_backend_up', { model: 'a', upstream: 'vllm-0:8000' })).toBe(1);
    expect(sampleValue(m, 'llm_backend_up', { model: 'a', upstream: 'vllm-1:8000' })).toBe(0);
  });

  it('maps generation error codes to outcomes', () => {
    expect(outcomeForErrorCode('backend_timeout')).toBe('timeout');
    expect(outcomeForErrorCode('backend_unavailable')).toBe('unavailable');
    expect(outcomeForErrorCode('backend_error')).toBe('error');
    expect(outcomeForErrorCode('internal_error')).toBe('error');
  });
});

describe('per-app registries', () => {
  it('gives every app its own registry, so two apps in one process neither clash nor share values', async () => {
    const registryOf = (module: ReturnType<typeof MetricsModule.forRoot>): Registry =>
      (module.providers as { provide: unknown; useValue?: Registry }[]).find((p) => p.provide === METRICS_REGISTRY)!
        .useValue!;
    const first = registryOf(MetricsModule.forRoot());
    const second = registryOf(MetricsModule.forRoot());
    expect(first).not.toBe(second);

    const config = { models: { defaultModel: 'a', models: [modelConfig({ name: 'a' })] } } as unknown as AppConfig;
    const one = new LlmMetricsService(first, config);
    new LlmMetricsService(second, config);
    one.quotaRejected('tokens');
    expect(sampleSum(parseExposition(await first.metrics()), METRICS.quotaRejections.name)).toBe(1);
    expect(sampleSum(parseExposition(await second.metrics()), METRICS.quotaRejections.name)).toBe(0);
    // The process defaults are collected into each app's registry too.
    expect(parseExposition(await second.metrics()).types.get('process_cpu_user_seconds_total')).toBe('counter');
  });

  it("leaves prom-client's global registry alone", () => {
    MetricsModule.forRoot();
    expect(register.getSingleMetric('process_cpu_user_seconds_total')).toBeUndefined();
    expect(register.getMetricsAsArray()).toHaveLength(0);
  });
});
