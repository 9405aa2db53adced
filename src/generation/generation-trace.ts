/**
 * The GenAI semantic-convention attributes of a generation (trace-attributes.ts names them):
 * what the request asked for, on the server span and on each upstream call's span; what the
 * answer was, on both once known. Never the prompt or the output (TraceSpan.recordContent is
 * the opt-in for those).
 */
import type { ModelConfig } from '../config/models.types';
import type { FinishReason, GenerationParams, TokenUsage } from '../domain/generation';
import { GEN_AI, GEN_AI_OPERATIONS, genAiProviderName, LLM } from '../tracing/trace-attributes';
import type { TraceAttributes } from '../tracing/tracing';
import type { Candidate } from './model-registry';

export function operationName(params: GenerationParams): string {
  return params.messages?.length ? GEN_AI_OPERATIONS.chat : GEN_AI_OPERATIONS.textCompletion;
}

export function requestAttributes(model: ModelConfig, params: GenerationParams): TraceAttributes {
  return {
    [GEN_AI.operationName]: operationName(params),
    [GEN_AI.requestModel]: model.name,
    [GEN_AI.requestMaxTokens]: params.maxNewTokens,
    [GEN_AI.requestTemperature]: params.temperature,
    [GEN_AI.requestTopP]: params.topP,
    [GEN_AI.requestTopK]: params.topK > 0 ? params.topK : null,
    [GEN_AI.requestSeed]: params.seed,
  };
}

/** The upstream call's span: the request's attributes, which backend, and which upstream of it. */
export function upstreamAttributes(candidate: Candidate, params: GenerationParams): TraceAttributes {
  return {
    ...requestAttributes(candidate.model, params),
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
