/**
 * The validated shape of config/models.yaml. Produced by models.loader.ts; everything
 * downstream (router, providers, health) reads these types, never the raw YAML.
 */
import type { ModelPricing } from './cost';

export const PROVIDER_KINDS = ['vllm', 'ollama', 'openai', 'llama-cpp', 'mock'] as const;
export type ProviderKind = (typeof PROVIDER_KINDS)[number];

/** What a model serves: chat models /v1/generate, completions and chat; embedding models /v1/embeddings. */
export const MODEL_KINDS = ['chat', 'embedding'] as const;
export type ModelKind = (typeof MODEL_KINDS)[number];

export interface UpstreamConfig {
  /** Base URL without a trailing slash, e.g. http://vllm-0:8000 */
  baseUrl: string;
  /** Relative share of traffic among the model's upstreams (>= 1). */
  weight: number;
  /** Requests the gateway lets this upstream hold at once; null: unlimited. */
  maxInFlight: number | null;
}

/** Settings of the in-process llama.cpp engine (provider `llama-cpp`). */
export interface LlamaCppConfig {
  /** Absolute path of the GGUF file. */
  modelPath: string;
  /** CPU threads for inference. */
  threads: number;
  /** Context window in tokens (<= the model's trained context). */
  contextSize: number;
  /** Concurrent generations: context sequences in the pool. */
  sequences: number;
  /** Requests allowed to wait for a free sequence before 503. */
  maxQueue: number;
  /** Write a deterministic tiny demo model at modelPath when the file is missing. */
  generateIfMissing: boolean;
}

/** Per-upstream circuit breaker: skip an upstream after `failures` failures in a row, for `cooldownMs`. */
export interface BreakerConfig {
  failures: number;
  cooldownMs: number;
}

export const LOAD_BALANCING = ['least_outstanding', 'weighted', 'prefix_affinity'] as const;
/** How a request picks among a model's upstreams (see scheduling/model-scheduler.ts). */
export type LoadBalancing = (typeof LOAD_BALANCING)[number];

/** The wait in front of a model whose upstreams are all at max_in_flight. */
export interface QueueConfig {
  /** Requests that may wait at once; one more gets 503 overloaded. 0: no waiting. */
  maxLength: number;
  /** The longest a request waits before 503 overloaded. */
  maxWaitMs: number;
}

export interface ModelConfig {
  name: string;
  /** `kind` in models.yaml; default chat. */
  kind: ModelKind;
  provider: ProviderKind;
  /** The backend's own model name (vLLM model id, Ollama tag). Defaults to `name`. */
  upstreamModel: string;
  /** Empty for in-process providers (llama-cpp, mock). */
  upstreams: UpstreamConfig[];
  /** Resolved value of the env var named by api_key_env, if any. */
  apiKey: string | null;
  maxNewTokens: number;
  defaultMaxNewTokens: number;
  timeoutMs: number;
  /** null: use CACHE_TTL_SECONDS. */
  cacheTtlSeconds: number | null;
  required: boolean;
  fallbacks: string[];
  breaker: BreakerConfig;
  queue: QueueConfig;
  loadBalancing: LoadBalancing;
  /** vLLM only: read each upstream's /metrics every second and count its backlog in the load. */
  upstreamMetrics: boolean;
  /** Prices per token (contracts/cost.ts); null: the model costs 0. */
  pricing: ModelPricing | null;
  llamaCpp: LlamaCppConfig | null;
}

export interface ModelsConfig {
  file: string;
  defaultModel: string;
  models: ModelConfig[];
}

/**
 * The longest a request of `model` can take to get its answer: its turn in the queue (when an
 * upstream has max_in_flight) and then timeout_ms. What a request waiting on another replica's
 * identical generation may wait for.
 */
export function longestAnswerMs(model: ModelConfig): number {
  const queued = model.upstreams.some((upstream) => upstream.maxInFlight !== null) ? model.queue.maxWaitMs : 0;
  return queued + model.timeoutMs;
}
