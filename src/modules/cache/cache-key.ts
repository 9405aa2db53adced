/**
 * The canonical cache key: a SHA-256 over the model's identity (public name, provider and
 * upstream model) and every parameter that can change the output, after defaults are applied.
 * Omitting `temperature` and sending 1.0 give the same key; any other difference gives another.
 * Stop strings are a set (order and duplicates do not change the output). The prompt (or the
 * chat messages) only ever enters the hash: no store holds it in clear. Tools (with the choice
 * and whether parallel calls are allowed), the calls and tool results in the conversation, the
 * response format and the extra sampling fields are part of it: each can change the answer.
 */
import { createHash } from 'node:crypto';
import type { ModelConfig } from '../../contracts/model-config';
import type { EmbeddingParams, GenerationParams } from '../../contracts/generation';

/** Bump when the key layout or the stored value format changes. */
const KEY_VERSION = 2;

export function cacheKey(model: ModelConfig, params: GenerationParams): string {
  const canonical = JSON.stringify([
    KEY_VERSION,
    model.name,
    model.provider,
    model.upstreamModel,
    params.prompt,
    // Chat requests: the whole conversation, role by role, with its tool calls and results.
    (params.messages ?? []).map((message) => [
      message.role,
      message.content,
      (message.toolCalls ?? []).map((call) => [call.id, call.name, call.arguments]),
      message.toolCallId ?? null,
    ]),
    params.maxNewTokens,
    params.temperature,
    params.topP,
    params.topK,
    [...new Set(params.stop)].sort(),
    params.seed,
    params.tools ? [params.tools.tools, params.tools.choice, params.tools.parallel] : null,
    params.responseFormat ?? null,
    // Penalties, logit bias and reasoning effort (only present when they change something).
    params.extra ?? null,
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}

/**
 * The key of an embedding request: the model's identity, the inputs in order and the vector
 * size. Embeddings are deterministic, so nothing else changes them; the encoding (float or
 * base64) is applied when answering, so both share one entry.
 */
export function embeddingCacheKey(model: ModelConfig, params: EmbeddingParams): string {
  const canonical = JSON.stringify([
    KEY_VERSION,
    'embedding',
    model.name,
    model.provider,
    model.upstreamModel,
    params.input,
    params.dimensions,
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}
