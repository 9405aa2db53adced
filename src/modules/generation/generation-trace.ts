/**
 * The GenAI semantic-convention attributes of a generation (trace-attributes.ts names them):
 * what the request asked for, on the server span and on each upstream call's span; what the
 * answer was, on both once known. Never the prompt or the output (TraceSpan.recordContent is
 * the opt-in for those).
 */
import type { ModelConfig } from '../../contracts/model-config';
import type { FinishReason, GenerationParams, TokenUsage } from '../../contracts/generation';
import { GEN_AI, GEN_AI_OPERATIONS, genAiProviderName, LLM } from '../../infra/tracing/trace-attributes';
import type { TraceAttributes } from '../../infra/tracing/tracing';
import type { Candidate } from '../scheduling/model-registry';

export function operationName(params: GenerationParams): string {
  return params.messages?.length ? GEN_AI_OPERATIONS.chat : GEN_AI_OPERATIONS.textCompletion;
}

/** What a request asked for; `params` null for embeddings (no sampling parameters). */
export function requestAttributes(
  model: ModelConfig,
  operation: string,
  params: GenerationParams | null,
): TraceAttributes {
  const asked = { [GEN_AI.operationName]: operation, [GEN_AI.requestModel]: model.name };
  if (!params) return asked;
  return {
    ...asked,
    [GEN_AI.requestMaxTokens]: params.maxNewTokens,
    [GEN_AI.requestTemperature]: params.temperature,
    [GEN_AI.requestTopP]: params.topP,
    [GEN_AI.requestTopK]: params.topK > 0 ? params.topK : null,
    [GEN_AI.requestSeed]: params.seed,
  };
}

/** The upstream call's span: the request's attributes, which backend, and which upstream of it. */
export function upstreamAttributes(
  candidate: Candidate,
  operation: string,
  params: GenerationParams | null,
): TraceAttributes {
  return {
    ...requestAttributes(candidate.model, operation, params),
    [GEN_AI.providerName]: genAiProviderName(candidate.provider.kind),
    [LLM.upstream]: candidate.provider.upstreamLabel,
  };
}

export function resultAttributes(servedBy: string, finishReason: FinishReason, usage: TokenUsage): TraceAttributes {
  return {
    [GEN_AI.responseModel]: servedBy,
    [GEN_AI.responseFinishReasons]: [finishReason],
    [GEN_AI.usageInputTokens]: usage.promptTokens,
    [GEN_AI.usageOutputTokens]: usage.completionTokens,
  };
}

/** How callUpstreams traces one kind of call: its operation, its request, and what its answer says. */
export interface TracedCall<T> {
  operation: string;
  /** null for embeddings: no sampling parameters, and the input is never recorded. */
  params: GenerationParams | null;
  describe(result: T, servedBy: string): { attributes: TraceAttributes; output?: string; finishReason?: FinishReason };
}
