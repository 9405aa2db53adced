/**
 * Anthropic's `message` object and its stream, as the SDK's MessageStream accumulates it
 * (@anthropic-ai/sdk lib/MessageStream.ts): `message_start` (the message with empty content),
 * `ping`, then per block `content_block_start` / `content_block_delta` (`text_delta`, or
 * `input_json_delta` fragments of a tool call's input) / `content_block_stop`, then
 * `message_delta` (stop reason and the whole usage: the SDK overwrites its counts with it) and
 * `message_stop`. Every event is named by its type (the SDK dispatches on `event:`), and an
 * error after the start is an `error` event in Anthropic's error shape.
 *
 * Usage as Anthropic reports it: `input_tokens` are the prompt tokens not read from a cache,
 * `cache_read_input_tokens` those the backend's prefix cache served.
 */
import type { Answer } from '../../contracts/answer';
import type { TokenUsage, ToolCall } from '../../contracts/generation';
import { randomId } from '../../contracts/random-id';
import type { AnswerFormat, StreamState } from '../responses/answer-format';
import { anthropicError } from './anthropic-errors';

/** Longest `partial_json` fragment of a streamed tool input. */
const INPUT_JSON_FRAGMENT_CHARS = 32;

export function anthropicUsage(usage: TokenUsage) {
  const cached = usage.cachedPromptTokens ?? 0;
  return {
    input_tokens: usage.promptTokens - cached,
    output_tokens: usage.completionTokens,
    cache_read_input_tokens: cached,
    cache_creation_input_tokens: 0,
  };
}

/**
 * A turn that made calls ends in `tool_use` whatever the backend said (the embedded engine says
 * `stop`); a stop on one of `stop_sequences` is `stop_sequence` when the backend says which
 * (vLLM, the mock), else `end_turn`.
 */
function stopReason(answer: Answer): string {
  if (answer.toolCalls?.length || answer.finishReason === 'tool_calls') return 'tool_use';
  if (answer.finishReason === 'length') return 'max_tokens';
  return answer.stopSequence !== undefined ? 'stop_sequence' : 'end_turn';
}

/** A call's arguments as the object Anthropic's `input` is; text that is no JSON object gives {}. */
function toolInput(call: ToolCall): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(call.arguments);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

function toolUseBlock(call: ToolCall) {
  return { type: 'tool_use', id: call.id, name: call.name, input: toolInput(call) };
}

function contentBlocks(answer: Answer) {
  const text = answer.output === '' && answer.toolCalls?.length ? [] : [{ type: 'text', text: answer.output }];
  return [...text, ...(answer.toolCalls ?? []).map(toolUseBlock)];
}

export function messagesAnswerFormat(): AnswerFormat {
  /** Blocks opened so far in this stream, and whether the open one is the text block. */
  let blocks = 0;
  let textOpen = false;
  const start = (state: StreamState, model: string) => {
    if (!state.first) return [];
    state.first = false;
    const message = {
      id: state.id,
      type: 'message',
      role: 'assistant',
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      // Counted once the backend reports them (message_delta carries the final figures).
      usage: { input_tokens: 0, output_tokens: 0, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 },
    };
    return [{ type: 'message_start', message }, { type: 'ping' }];
  };
  const closeText = () => {
    if (!textOpen) return [];
    textOpen = false;
    return [{ type: 'content_block_stop', index: blocks - 1 }];
  };
  return {
    typedEvents: true,
    newId: () => `msg_${randomId(18)}`,
    body: (answer, state) => ({
      id: state.id,
      type: 'message',
      role: 'assistant',
      model: answer.model,
      content: contentBlocks(answer),
      stop_reason: stopReason(answer),
      stop_sequence: answer.stopSequence ?? null,
      usage: anthropicUsage(answer.usage),
      cached: answer.cached,
    }),
    delta: (text, model, state) => {
      const events: unknown[] = start(state, model);
      if (!textOpen) {
        textOpen = true;
        events.push({ type: 'content_block_start', index: blocks, content_block: { type: 'text', text: '' } });
        blocks += 1;
      }
      events.push({ type: 'content_block_delta', index: blocks - 1, delta: { type: 'text_delta', text } });
      // StreamResponse sets `first` after a delta; the start events above already did.
      state.first = false;
      return events;
    },
    end: (answer, state) => {
      const events: unknown[] = [...start(state, answer.model), ...closeText()];
      if (blocks === 0 && !answer.toolCalls?.length) {
        // An empty answer still has its (empty) text block, as Anthropic sends it.
        events.push({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
        events.push({ type: 'content_block_stop', index: 0 });
        blocks = 1;
      }
      for (const call of answer.toolCalls ?? []) {
        const index = blocks;
        blocks += 1;
        events.push({ type: 'content_block_start', index, content_block: { ...toolUseBlock(call), input: {} } });
        const json = JSON.stringify(toolInput(call));
        const chars = Array.from(json);
        for (let at = 0; at < chars.length; at += INPUT_JSON_FRAGMENT_CHARS) {
          const partial = chars.slice(at, at + INPUT_JSON_FRAGMENT_CHARS).join('');
          events.push({
            type: 'content_block_delta',
            index,
            delta: { type: 'input_json_delta', partial_json: partial },
          });
        }
        events.push({ type: 'content_block_stop', index });
      }
      events.push(
        {
          type: 'message_delta',
          delta: { stop_reason: stopReason(answer), stop_sequence: answer.stopSequence ?? null },
          usage: anthropicUsage(answer.usage),
        },
        { type: 'message_stop' },
      );
      return events;
    },
    streamError: (error, requestId) => [anthropicError(error.code, error.message, requestId)],
  };
}
