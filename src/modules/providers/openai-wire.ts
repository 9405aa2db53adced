/**
 * The wire format of OpenAI-compatible servers (openai.provider.ts has the whole description):
 * what differs between servers (CompletionsDialect) and between the completions and chat
 * endpoints (CompletionsEndpoint), our messages and structure fields in OpenAI's shapes, and the
 * fields of an answer read back (choices, finish reason, usage, error payloads).
 */
import { chatMessagesOf } from '../../contracts/generation';
import type { ReportedUsage } from '../../contracts/token-estimate';
import type { ChatMessage, FinishReason, GenerationParams } from '../../contracts/generation';
import { isRecord, tokenCount, unparseable } from './upstream-body';
import type { JsonRecord } from './upstream-body';

export interface CompletionsDialect {
  kind: 'vllm' | 'openai';
  /** Cheap readiness probe: any 2xx means ready. */
  readyPath: string;
  /** The `top_k` to send for our topK (0 = disabled), or undefined to omit the field. */
  topK(topK: number): number | undefined;
  /**
   * true: a stream is complete only with a usage chunk and `[DONE]` (vLLM always sends both).
   * false: `[DONE]` or a finish reason completes it; when the server sent no usage, the gateway
   * counts the tokens (contracts/token-estimate.ts), so quotas see the prompt and the completion.
   */
  strictStream: boolean;
}

export const OPENAI_DIALECT: CompletionsDialect = {
  kind: 'openai',
  readyPath: '/v1/models',
  topK: (topK) => (topK > 0 ? topK : undefined),
  strictStream: false,
};

/** What differs between `/v1/completions` and `/v1/chat/completions`. */
export interface CompletionsEndpoint {
  path: string;
  /** The request fields that carry the input (`prompt` or `messages`). */
  input(params: GenerationParams): JsonRecord;
  /** The text of a non-streamed choice; throws when the choice has none. */
  text(choice: JsonRecord): string;
  /** The text of a streamed choice ('' when the chunk carries none). */
  delta(choice: JsonRecord): string;
}

/** One message in OpenAI's chat shape. */
export function wireMessage(message: ChatMessage): JsonRecord {
  if (message.role === 'tool') return { role: 'tool', content: message.content, tool_call_id: message.toolCallId };
  if (message.toolCalls?.length) {
    return {
      role: 'assistant',
      content: message.content === '' ? null : message.content,
      tool_calls: message.toolCalls.map((call) => ({
        id: call.id,
        type: 'function',
        function: { name: call.name, arguments: call.arguments },
      })),
    };
  }
  return { role: message.role, content: message.content };
}

/** `tools`, `tool_choice`, `parallel_tool_calls` and `response_format`, when the request has them. */
export function structureFields(params: GenerationParams): JsonRecord {
  const fields: JsonRecord = {};
  if (params.tools) {
    const { tools, choice, parallel } = params.tools;
    fields.tools = tools.map((tool) => ({ type: 'function', function: tool }));
    fields.tool_choice = typeof choice === 'string' ? choice : { type: 'function', function: { name: choice.name } };
    fields.parallel_tool_calls = parallel;
  }
  const format = params.responseFormat;
  if (format?.type === 'json_object') fields.response_format = { type: 'json_object' };
  if (format?.type === 'json_schema') {
    const { name, schema, strict } = format;
    fields.response_format = { type: 'json_schema', json_schema: { name, schema, strict } };
  }
  return fields;
}

/**
 * The extra sampling fields in OpenAI's names (vLLM takes the same); `reasoning_effort` is a
 * chat field only, and so is the thinking switch, which vLLM hands to the chat template as
 * `enable_thinking` (Qwen3, DeepSeek and others read it; templates without it ignore it).
 */
export function extraSamplingFields(params: GenerationParams, chat: boolean): JsonRecord {
  const extra = params.extra;
  if (!extra) return {};
  return {
    ...(extra.presencePenalty !== undefined ? { presence_penalty: extra.presencePenalty } : {}),
    ...(extra.frequencyPenalty !== undefined ? { frequency_penalty: extra.frequencyPenalty } : {}),
    ...(extra.logitBias !== undefined ? { logit_bias: extra.logitBias } : {}),
    ...(chat && extra.reasoningEffort !== undefined ? { reasoning_effort: extra.reasoningEffort } : {}),
    ...(chat && extra.thinking !== undefined ? { chat_template_kwargs: { enable_thinking: extra.thinking } } : {}),
  };
}

/**
 * The reasoning text of a message or a streamed delta: vLLM's reasoning parsers put it in
 * `reasoning_content` (newer releases also in `reasoning`); '' when there is none.
 */
export function reasoningText(message: JsonRecord): string {
  return optionalText(message.reasoning_content ?? message.reasoning);
}

/**
 * The stop string that ended a choice: vLLM puts the matched string in `stop_reason` (a token id,
 * or null at end of sequence, otherwise); null when the server does not say.
 */
export function matchedStop(choice: JsonRecord): string | null {
  return choice.finish_reason === 'stop' && typeof choice.stop_reason === 'string' ? choice.stop_reason : null;
}

/** A string field; absent or null → ''. */
export function optionalText(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw unparseable();
  return value;
}

export const COMPLETIONS_ENDPOINT: CompletionsEndpoint = {
  path: '/v1/completions',
  input: (params) => ({ prompt: params.prompt }),
  text: (choice) => {
    if (typeof choice.text !== 'string') throw unparseable();
    return choice.text;
  },
  delta: (choice) => optionalText(choice.text),
};

export const CHAT_ENDPOINT: CompletionsEndpoint = {
  path: '/v1/chat/completions',
  input: (params) => ({
    messages: (chatMessagesOf(params) ?? []).map(wireMessage),
    ...structureFields(params),
  }),
  text: (choice) => {
    if (!isRecord(choice.message)) throw unparseable();
    return optionalText(choice.message.content);
  },
  delta: (choice) => {
    if (choice.delta === undefined || choice.delta === null) return '';
    if (!isRecord(choice.delta)) throw unparseable();
    return optionalText(choice.delta.content);
  },
};

export function endpointFor(params: GenerationParams): CompletionsEndpoint {
  return chatMessagesOf(params) ? CHAT_ENDPOINT : COMPLETIONS_ENDPOINT;
}

export function mapFinishReason(reason: unknown): FinishReason {
  if (reason === 'length') return 'length';
  return reason === 'tool_calls' || reason === 'function_call' ? 'tool_calls' : 'stop';
}

/** The counts a `usage` object reports (null: not reported; completeUsage() counts those). */
export function parseUsage(usage: unknown): ReportedUsage | null {
  if (usage == null) return null;
  if (!isRecord(usage)) throw unparseable();
  return {
    promptTokens: usage.prompt_tokens == null ? null : tokenCount(usage.prompt_tokens),
    completionTokens: usage.completion_tokens == null ? null : tokenCount(usage.completion_tokens),
    // vLLM (with --enable-prompt-tokens-details) and OpenAI report prefix-cache hits here.
    cachedPromptTokens: isRecord(usage.prompt_tokens_details)
      ? usage.prompt_tokens_details.cached_tokens == null
        ? null
        : tokenCount(usage.prompt_tokens_details.cached_tokens)
      : null,
  };
}

export function isErrorPayload(payload: JsonRecord): boolean {
  return (payload.error !== undefined && payload.error !== null) || payload.object === 'error';
}

export function firstChoice(payload: JsonRecord): JsonRecord | null {
  const { choices } = payload;
  if (choices === undefined || choices === null) return null;
  if (!Array.isArray(choices)) throw unparseable();
  const [choice] = choices as unknown[];
  if (choice === undefined) return null;
  if (!isRecord(choice)) throw unparseable();
  return choice;
}
