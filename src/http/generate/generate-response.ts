/** Response shapes of POST /v1/generate (API.md "Generation"). */
import { randomId } from '../../contracts/random-id';
import type { FinishReason, GenerationResult } from '../../contracts/generation';

export interface GenerateResponse {
  id: string;
  model: string;
  output: string;
  cached: boolean;
  finish_reason: FinishReason;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

export function generationId(): string {
  return `gen-${randomId(12)}`;
}

export function generateResponse(
  id: string,
  model: string,
  result: GenerationResult,
  cached: boolean,
): GenerateResponse {
  // A cached answer cost no tokens (API.md): its usage is zero.
  const prompt = cached ? 0 : result.usage.promptTokens;
  const completion = cached ? 0 : result.usage.completionTokens;
  return {
    id,
    model,
    output: result.output,
    cached,
    finish_reason: result.finishReason,
    usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
  };
}
