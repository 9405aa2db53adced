/**
 * OpenAI wire formats for answers: `text_completion` and `chat.completion` bodies and their
 * streamed chunks. `cached` is our additive extension (SDKs ignore unknown fields).
 *
 * Tool calls: a chat answer that made calls has `message.content` null (unless the model also
 * wrote text), `message.tool_calls` `[{id, type: "function", function: {name, arguments}}]` and
 * finish "tool_calls". Streamed, as OpenAI sends them: per call, a chunk whose
 * `delta.tool_calls[0]` has `index`, `id`, `type` and `function.name` with empty arguments, then
 * chunks with only `index` and an `arguments` fragment; the finish reason follows on a chunk
 * with an empty delta.
 */
import { randomId } from '../../contracts/random-id';
import type { FinishReason, TokenUsage, ToolCall } from '../../contracts/generation';

export type OpenAiKind = 'completion' | 'chat';

export interface OpenAiUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** Only when the backend reported its prefix-cache hits (OpenAI's shape). */
  prompt_tokens_details?: { cached_tokens: number };
}

export function openAiUsage(usage: TokenUsage): OpenAiUsage {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
    ...(usage.cachedPromptTokens !== undefined
      ? { prompt_tokens_details: { cached_tokens: usage.cachedPromptTokens } }
      : {}),
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

function wireToolCall(call: ToolCall) {
  return { id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } };
}

function assistantMessage(output: string, toolCalls: ToolCall[]) {
  if (toolCalls.length === 0) return { role: 'assistant', content: output };
  return { role: 'assistant', content: output === '' ? null : output, tool_calls: toolCalls.map(wireToolCall) };
}

/** A complete answer: `text_completion` with `choices[0].text`, or `chat.completion` with the assistant message. */
export function answerBody(
  kind: OpenAiKind,
  env: Envelope,
  output: string,
  finishReason: FinishReason,
  usage: TokenUsage,
  cached: boolean,
  toolCalls: ToolCall[] = [],
) {
  const choice =
    kind === 'chat' ? { index: 0, message: assistantMessage(output, toolCalls) } : { index: 0, text: output };
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

/** Longest `arguments` fragment of one streamed tool-call chunk (OpenAI sends about a token each). */
export const TOOL_ARGUMENTS_FRAGMENT_CHARS = 32;

/** The `chat.completion.chunk`s that stream these calls (see the file comment); `first` adds the role. */
export function toolCallChunks(env: Envelope, toolCalls: ToolCall[], first: boolean) {
  const chunk = (toolCall: Record<string, unknown>, withRole: boolean) => ({
    ...env,
    object: 'chat.completion.chunk',
    choices: [
      {
        index: 0,
        delta: { ...(withRole ? { role: 'assistant', content: null } : {}), tool_calls: [toolCall] },
        logprobs: null,
        finish_reason: null,
      },
    ],
  });
  return toolCalls.flatMap((call, index) => {
    // By code point, so a fragment never splits a surrogate pair.
    const chars = Array.from(call.arguments);
    const fragments: string[] = [];
    for (let at = 0; at < chars.length; at += TOOL_ARGUMENTS_FRAGMENT_CHARS) {
      fragments.push(chars.slice(at, at + TOOL_ARGUMENTS_FRAGMENT_CHARS).join(''));
    }
    const head = { index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } };
    return [
      chunk(head, first && index === 0),
      ...fragments.map((fragment) => chunk({ index, function: { arguments: fragment } }, false)),
    ];
  });
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
