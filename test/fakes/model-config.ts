import type { ModelConfig } from '../../src/contracts/model-config';
import type { GenerationParams } from '../../src/contracts/generation';

/** A complete ModelConfig for tests: a mock model unless overridden. */
export function modelConfig(overrides: Partial<ModelConfig> = {}): ModelConfig {
  const name = overrides.name ?? 'test-model';
  return {
    name,
    kind: 'chat',
    provider: 'mock',
    upstreamModel: name,
    upstreams: [],
    apiKey: null,
    maxNewTokens: 2048,
    defaultMaxNewTokens: 256,
    timeoutMs: 60_000,
    cacheTtlSeconds: null,
    required: false,
    fallbacks: [],
    breaker: { failures: 3, cooldownMs: 10_000 },
    queue: { maxLength: 1000, maxWaitMs: 30_000 },
    loadBalancing: 'least_outstanding',
    upstreamMetrics: false,
    pricing: null,
    llamaCpp: null,
    ...overrides,
  };
}

/** GenerationParams after defaults, as the generation service passes them to providers. */
export function generationParams(overrides: Partial<GenerationParams> = {}): GenerationParams {
  return {
    prompt: 'Once upon a time',
    maxNewTokens: 64,
    temperature: 1,
    topP: 1,
    topK: 0,
    stop: [],
    seed: null,
    ...overrides,
  };
}
