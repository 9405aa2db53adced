/**
 * OpenAI wire formats for answers: `text_completion` and `chat.completion` bodies and their
 * streamed chunks. `cached` is our additive extension (SDKs ignore unknown fields).
 */
import { randomId } from '../common/random-id';
import type { FinishReason, TokenUsage } from '../domain/generation';

export type OpenAiKind = 'completion' | 'chat';

export interface OpenAiUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export function openAiUsage(usage: TokenUsage): OpenAiUsage {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
  };
}

export function openAiId(kind: OpenAiKind): string {
  return `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomId(12)}`;
}

interface Envelope {
  id: string;
  created: number;
  model: string;
}

/** A complete answer: `text_completion` with `choices[0].text`, or `chat.completion` with the assistant message. */
export function answerBody(
  kind: OpenAiKind,
  env: Envelope,
  output: string,
  finishReason: FinishReason,
  usage: TokenUsage,
  cached: boolean,
) {
  const choice =
    kind === 'chat' ? { index: 0, message: { role: 'assistant', content: output } } : { index: 0, text: output };
  return {
    ...env,
    object: kind === 'chat' ? 'chat.completion' : 'text_completion',
    choices: [{ ...choice, logprobs: null, finish_reason: finishReason }],
    usage: openAiUsage(usage),
    cached,
  };
}

/** One streamed chunk; `finishReason` only on the last content chunk. */
export function streamChunk(
  kind: OpenAiKind,
  env: Envelope,
  text: string | null,
  finishReason: FinishReason | null,
  first = false,
) {
  if (kind === 'completion') {
    return {
      ...env,
      object: 'text_completion',
      choices: [{ index: 0, text: text ?? '', logprobs: null, finish_reason: finishReason }],
    };
  }
  const delta = first ? { role: 'assistant', content: text ?? '' } : text === null ? {} : { content: text };
  return {
    ...env,
    object: 'chat.completion.chunk',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
  };
}

/** The final chunk of `stream_options.include_usage`: no choices, the usage. */
export function usageChunk(kind: OpenAiKind, env: Envelope, usage: TokenUsage) {
  return {
    ...env,
    object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
    choices: [],
    usage: openAiUsage(usage),
  };
}
