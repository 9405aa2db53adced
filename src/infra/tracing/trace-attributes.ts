/**
 * Names of the spans, attributes and events the gateway records, in one place: the OpenTelemetry
 * GenAI semantic conventions (gen_ai.*) where they have a name, ours (llm.*) where they do not.
 * Values must never be a key, a prompt or an output (content has its own opt-in: see
 * TraceSpan.recordContent).
 */
import type { ProviderKind } from '../../contracts/model-config';

/** GenAI semantic conventions (https://opentelemetry.io/docs/specs/semconv/gen-ai/). */
export const GEN_AI = {
  /** `text_completion` (/v1/generate, /v1/completions), `chat` (/v1/chat/completions) or `embeddings`. */
  operationName: 'gen_ai.operation.name',
  /** The backend kind: see genAiProviderName(). */
  providerName: 'gen_ai.provider.name',
  /** The model the client asked for (our public name). */
  requestModel: 'gen_ai.request.model',
  /** The model that answered: the fallback's name when a fallback served. */
  responseModel: 'gen_ai.response.model',
  requestMaxTokens: 'gen_ai.request.max_tokens',
  requestTemperature: 'gen_ai.request.temperature',
  requestTopP: 'gen_ai.request.top_p',
  requestTopK: 'gen_ai.request.top_k',
  requestSeed: 'gen_ai.request.seed',
  usageInputTokens: 'gen_ai.usage.input_tokens',
  usageOutputTokens: 'gen_ai.usage.output_tokens',
  /** An array, e.g. `['stop']`. */
  responseFinishReasons: 'gen_ai.response.finish_reasons',
  responseId: 'gen_ai.response.id',
  /** Content (opt-in only, set by TraceSpan.recordContent): JSON of the messages. */
  inputMessages: 'gen_ai.input.messages',
  outputMessages: 'gen_ai.output.messages',
} as const;

export const GEN_AI_OPERATIONS = { textCompletion: 'text_completion', chat: 'chat', embeddings: 'embeddings' } as const;

/** Attributes of our own. */
export const LLM = {
  /** `hit`, `miss`, `coalesced` (as llm_cache_requests_total), or `bypass` (Cache-Control, TTL 0). */
  cacheResult: 'llm.cache.result',
  /** The API key's id (never the key or its prefix). */
  keyId: 'llm.key.id',
  /** The upstream's `host:port` label (as llm_backend_up), never its URL. */
  upstream: 'llm.upstream',
  requestId: 'llm.request_id',
  /** `rpm`, `tpm` or `auth` when a rate limit rejected the request. */
  rateLimitRejected: 'llm.rate_limit.rejected',
  /** `requests` or `tokens` when a quota rejected the request. */
  quotaRejected: 'llm.quota.rejected',
  /** A fallback model served (the requested model's upstreams were unreachable). */
  fallback: 'llm.fallback',
} as const;

/** Names of the child spans of a request (the upstream call is named by inferenceSpanName). */
export const SPANS = {
  auth: 'llm.auth',
  rateLimit: 'llm.rate_limit',
  quota: 'llm.quota',
  cacheLookup: 'llm.cache.lookup',
  queue: 'llm.queue',
} as const;

export const EVENTS = {
  /** On a streamed upstream call's span when its first token arrives (a JSON answer arrives whole). */
  firstToken: 'gen_ai.first_token',
} as const;

/** The upstream call's span name, as the GenAI conventions say: `{operation} {model}`. */
export function inferenceSpanName(operation: string, model: string): string {
  return `${operation} ${model}`;
}

const PROVIDER_NAMES: Record<ProviderKind, string> = {
  vllm: 'vllm',
  ollama: 'ollama',
  openai: 'openai',
  'llama-cpp': 'llama.cpp',
  mock: 'mock',
};

/** gen_ai.provider.name of a backend kind (an OpenAI-compatible server reports `openai`). */
export function genAiProviderName(kind: ProviderKind): string {
  return PROVIDER_NAMES[kind];
}
