/**
 * The sections of one model in models.yaml (CONFIG.md): its upstreams, the embedded engine's
 * settings, the circuit breaker, the queue and the load balancing. Each failure names the model
 * and the field.
 */
import { isAbsolute, resolve } from 'node:path';
import {
  type BreakerConfig,
  LOAD_BALANCING,
  type LoadBalancing,
  type QueueConfig,
  type LlamaCppConfig,
  type ProviderKind,
  type UpstreamConfig,
} from '../../contracts/model-config';

import { type ModelPricing, PRICE_DECIMALS, pricePerToken } from '../../contracts/cost';
import { asMapping, FieldReader } from './yaml-fields';

const LLAMA_CPP_FIELDS = ['model_path', 'threads', 'context_size', 'sequences', 'max_queue', 'generate_if_missing'];
/** Providers that talk to an upstream over HTTP. */
export const HTTP_PROVIDERS: readonly ProviderKind[] = ['vllm', 'ollama', 'openai'];

export function parseBaseUrl(reader: FieldReader, field: string, value: unknown): string {
  if (typeof value !== 'string') reader.fail(field, 'must be a URL string');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    reader.fail(field, `not a valid URL: "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    reader.fail(field, 'must be an http:// or https:// URL');
  }
  if (url.search || url.hash) reader.fail(field, 'must not have a query or fragment');
  return value.replace(/\/+$/, '');
}

const MAX_IN_FLIGHT = 1_000_000;

export function parseUpstreams(reader: FieldReader, provider: ProviderKind, where: string): UpstreamConfig[] {
  // The model's max_in_flight is every upstream's unless an upstream entry sets its own.
  const modelMaxInFlight = reader.has('max_in_flight') ? reader.int('max_in_flight', 0, 1, MAX_IN_FLIGHT) : null;
  const hasList = reader.has('upstreams');
  const hasBase = reader.has('base_url');
  if (!HTTP_PROVIDERS.includes(provider)) {
    if (hasList) reader.fail('upstreams', `not used by provider ${provider}`);
    if (hasBase) reader.fail('base_url', `not used by provider ${provider}`);
    return [];
  }
  if (hasList && hasBase) reader.fail('base_url', 'give either base_url or upstreams, not both');
  if (hasBase) {
    const baseUrl = parseBaseUrl(reader, 'base_url', reader.string('base_url'));
    return [{ baseUrl, weight: 1, maxInFlight: modelMaxInFlight }];
  }
  const entries = reader.list('upstreams');
  if (entries.length === 0) reader.fail('upstreams', `provider ${provider} needs base_url or upstreams`);
  return entries.map((entry, index) => {
    const mapping = asMapping(entry);
    const field = `upstreams[${index}]`;
    if (!mapping) reader.fail(field, 'must be a mapping with base_url');
    const upstream: FieldReader = new FieldReader(mapping, `${where}: ${field}`);
    upstream.rejectUnknown(['base_url', 'weight', 'max_in_flight']);
    return {
      baseUrl: parseBaseUrl(upstream, 'base_url', upstream.string('base_url')),
      weight: upstream.int('weight', 1, 1, 1000),
      maxInFlight: upstream.has('max_in_flight')
        ? upstream.int('max_in_flight', 0, 1, MAX_IN_FLIGHT)
        : modelMaxInFlight,
    };
  });
}

export function parseLlamaCpp(reader: FieldReader, provider: ProviderKind, configDir: string): LlamaCppConfig | null {
  if (provider !== 'llama-cpp') {
    for (const field of LLAMA_CPP_FIELDS) {
      if (reader.has(field)) reader.fail(field, `only used by provider llama-cpp`);
    }
    return null;
  }
  const modelPath = reader.string('model_path');
  return {
    modelPath: isAbsolute(modelPath) ? modelPath : resolve(configDir, modelPath),
    threads: reader.int('threads', 1, 1, 256),
    contextSize: reader.int('context_size', 2048, 16, 1_048_576),
    sequences: reader.int('sequences', 2, 1, 64),
    maxQueue: reader.int('max_queue', 64, 0, 100_000),
    generateIfMissing: reader.bool('generate_if_missing', false),
  };
}

export function parseBreaker(reader: FieldReader, where: string): BreakerConfig {
  const defaults: BreakerConfig = { failures: 3, cooldownMs: 10_000 };
  if (!reader.has('breaker')) return defaults;
  const mapping = reader.mapping('breaker');
  const breaker: FieldReader = new FieldReader(mapping, `${where}: breaker`);
  breaker.rejectUnknown(['failures', 'cooldown_ms']);
  return {
    failures: breaker.int('failures', defaults.failures, 1, 1000),
    cooldownMs: breaker.int('cooldown_ms', defaults.cooldownMs, 1, 3_600_000),
  };
}

/**
 * `pricing: {input, output, cached_input?}` per million tokens in CURRENCY (CONFIG.md); without it
 * the model costs 0. cached_input defaults to input.
 */
export function parsePricing(reader: FieldReader, where: string): ModelPricing | null {
  if (!reader.has('pricing')) return null;
  const fields = reader.mapping('pricing');
  const pricing = new FieldReader(fields, `${where}: pricing`);
  pricing.rejectUnknown(['input', 'output', 'cached_input']);
  const price = (field: string): bigint => {
    const value = fields[field];
    if (value === undefined || value === null) pricing.fail(field, 'is required');
    const perToken = typeof value === 'number' ? pricePerToken(value) : null;
    if (perToken === null) {
      return pricing.fail(
        field,
        `must be a number of at least 0 with at most ${PRICE_DECIMALS} decimals (per million tokens)`,
      );
    }
    return perToken;
  };
  const input = price('input');
  const output = price('output');
  const cachedInput = pricing.has('cached_input') ? price('cached_input') : input;
  return { input, output, cachedInput };
}

/** Without a `queue` entry, a model with max_in_flight still queues (bounded) rather than shed at once. */
const DEFAULT_QUEUE: QueueConfig = { maxLength: 1000, maxWaitMs: 30_000 };

export function parseQueue(reader: FieldReader, where: string): QueueConfig {
  if (!reader.has('queue')) return DEFAULT_QUEUE;
  const queue: FieldReader = new FieldReader(reader.mapping('queue'), `${where}: queue`);
  queue.rejectUnknown(['max_length', 'max_wait_ms']);
  return {
    maxLength: queue.int('max_length', DEFAULT_QUEUE.maxLength, 0, 1_000_000),
    maxWaitMs: queue.int('max_wait_ms', DEFAULT_QUEUE.maxWaitMs, 1, 3_600_000),
  };
}

export function parseLoadBalancing(reader: FieldReader): LoadBalancing {
  if (!reader.has('load_balancing')) return 'least_outstanding';
  const value = reader.string('load_balancing');
  if (!(LOAD_BALANCING as readonly string[]).includes(value)) {
    reader.fail('load_balancing', `unknown policy "${value}" (expected ${LOAD_BALANCING.join(', ')})`);
  }
  return value as LoadBalancing;
}
