/**
 * OpenAI's `response` object and its typed stream, as the SDK's ResponseStream accumulates it
 * (openai-node lib/responses/ResponseAccumulator.ts): `response.created` and
 * `response.in_progress` (the response with no output yet); for the text, a `message` item
 * (`response.output_item.added`, `response.content_part.added`, `response.output_text.delta`
 * per delta, then `…output_text.done`, `…content_part.done`, `…output_item.done`); per tool
 * call a `function_call` item (`…output_item.added`, `response.function_call_arguments.delta`
 * fragments, `…arguments.done`, `…output_item.done`); reasoning text the backend streams apart
 * from the answer (vLLM `reasoning_content`), first, as a `reasoning` item with one
 * `reasoning_text` part (`…output_item.added`, `…content_part.added`,
 * `response.reasoning_text.delta` per delta, then the `…done` events once the answer starts);
 * then `response.completed` (or
 * `response.incomplete` when the output limit cut it) with the whole response. Every event has
 * its `sequence_number` (from 0) and is named by its type. An error after the start is
 * `response.failed` with the error in `response.error`.
 *
 * Usage as OpenAI reports it: `input_tokens` with `input_tokens_details.cached_tokens` (the
 * backend's prefix-cache hits when it reports them), `output_tokens`, `total_tokens`.
 */
import type { Answer } from '../../contracts/answer';
import type { TokenUsage, ToolCall } from '../../contracts/generation';
import { randomId } from '../../contracts/random-id';
import type { AnswerFormat, StreamState } from '../responses/answer-format';
import { TOOL_ARGUMENTS_FRAGMENT_CHARS } from './openai-format';

/** The request's fields a response echoes (OpenAI returns them with every response object). */
export type ResponseEcho = Record<string, unknown>;

export function responsesUsage(usage: TokenUsage) {
  return {
    input_tokens: usage.promptTokens,
    input_tokens_details: { cached_tokens: usage.cachedPromptTokens ?? 0 },
    output_tokens: usage.completionTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: usage.promptTokens + usage.completionTokens,
  };
}

function textPart(text: string) {
  return { type: 'output_text', text, annotations: [], logprobs: [] };
}

function messageItem(id: string, text: string, status: string) {
  return { type: 'message', id, status, role: 'assistant', content: status === 'in_progress' ? [] : [textPart(text)] };
}

function callItem(id: string, call: ToolCall, status: string) {
  return {
    type: 'function_call',
    id,
    call_id: call.id,
    name: call.name,
    arguments: status === 'in_progress' ? '' : call.arguments,
    status,
  };
}

function reasoningItem(id: string, text: string, status: string) {
  const content = status === 'in_progress' ? [] : [{ type: 'reasoning_text', text }];
  return { type: 'reasoning', id, summary: [], content, status };
}

function fragments(text: string): string[] {
  const chars = Array.from(text); // by code point: a fragment never splits a surrogate pair
  const out: string[] = [];
  for (let at = 0; at < chars.length; at += TOOL_ARGUMENTS_FRAGMENT_CHARS) {
    out.push(chars.slice(at, at + TOOL_ARGUMENTS_FRAGMENT_CHARS).join(''));
  }
  return out;
}

/**
 * `model`: the model asked for (named by a failed response); `echo`: the request fields every
 * response object repeats; `onFinish` runs with the complete response object before it is sent
 * (storing it) and returns it as it is to be sent.
 */
export function responsesAnswerFormat(
  model: string,
  echo: ResponseEcho,
  onFinish?: (response: Record<string, unknown>, answer: Answer) => Promise<Record<string, unknown>>,
): AnswerFormat {
  const messageId = `msg_${randomId(18)}`;
  const reasoningId = `rs_${randomId(18)}`;
  let callIds: string[] | null = null;
  let sequence = 0;
  /** Output items announced so far in the stream: the next one's output_index. */
  let items = 0;
  let text = '';
  let thought = '';
  /** output_index of the message and the reasoning items once announced; open: not done yet. */
  let messageIndex: number | null = null;
  let reasoningIndex: number | null = null;
  let reasoningOpen = false;
  let finished: Record<string, unknown> | null = null;

  const idsFor = (calls: ToolCall[]) => (callIds ??= calls.map(() => `fc_${randomId(18)}`));
  const hasMessage = (answer: Answer) => answer.output !== '' || !answer.toolCalls?.length;

  const response = (state: StreamState, served: string, fields: Record<string, unknown>) => ({
    id: state.id,
    object: 'response',
    created_at: state.created,
    status: 'in_progress',
    error: null,
    incomplete_details: null,
    ...echo,
    model: served,
    output: [],
    output_text: '',
    usage: null,
    ...fields,
  });

  /** Reasoning (streamed first by backends), then the message, then the calls. */
  const completeResponse = (answer: Answer, state: StreamState) => {
    const calls = answer.toolCalls ?? [];
    const ids = idsFor(calls);
    const output = [
      ...(answer.reasoning ? [reasoningItem(reasoningId, answer.reasoning, 'completed')] : []),
      ...(hasMessage(answer) ? [messageItem(messageId, answer.output, 'completed')] : []),
      ...calls.map((call, i) => callItem(ids[i], call, 'completed')),
    ];
    const cut = answer.finishReason === 'length';
    return response(state, answer.model, {
      status: cut ? 'incomplete' : 'completed',
      incomplete_details: cut ? { reason: 'max_output_tokens' } : null,
      output,
      output_text: answer.output,
      usage: responsesUsage(answer.usage),
      cached: answer.cached,
    });
  };

  const event = (type: string, fields: Record<string, unknown>) => ({ type, sequence_number: sequence++, ...fields });

  const start = (state: StreamState, model: string) => {
    if (!state.first) return [];
    state.first = false;
    const initial = response(state, model, {});
    return [event('response.created', { response: initial }), event('response.in_progress', { response: initial })];
  };

  const openMessage = () => {
    if (messageIndex !== null) return [];
    messageIndex = items++;
    return [
      event('response.output_item.added', {
        output_index: messageIndex,
        item: messageItem(messageId, '', 'in_progress'),
      }),
      event('response.content_part.added', {
        item_id: messageId,
        output_index: messageIndex,
        content_index: 0,
        part: textPart(''),
      }),
    ];
  };

  const reasoningPart = () => ({ item_id: reasoningId, output_index: reasoningIndex, content_index: 0 });

  const openReasoning = () => {
    if (reasoningIndex !== null) return [];
    reasoningIndex = items++;
    reasoningOpen = true;
    return [
      event('response.output_item.added', {
        output_index: reasoningIndex,
        item: reasoningItem(reasoningId, '', 'in_progress'),
      }),
      event('response.content_part.added', { ...reasoningPart(), part: { type: 'reasoning_text', text: '' } }),
    ];
  };

  /** The reasoning item is done once the answer starts (or the stream ends). */
  const closeReasoning = () => {
    if (!reasoningOpen) return [];
    reasoningOpen = false;
    return [
      event('response.reasoning_text.done', { ...reasoningPart(), text: thought }),
      event('response.content_part.done', { ...reasoningPart(), part: { type: 'reasoning_text', text: thought } }),
      event('response.output_item.done', {
        output_index: reasoningIndex,
        item: reasoningItem(reasoningId, thought, 'completed'),
      }),
    ];
  };

  return {
    typedEvents: true,
    newId: () => `resp_${randomId(24)}`,
    finish: async (answer, state) => {
      const complete = completeResponse(answer, state);
      finished = onFinish ? await onFinish(complete, answer) : complete;
    },
    body: (answer, state) => finished ?? completeResponse(answer, state),
    reasoningDelta: (delta, model, state) => {
      const events = [...start(state, model)];
      // Reasoning after the answer began (no backend does this) stays out of the stream; the
      // completed response still carries it.
      if (reasoningIndex !== null && !reasoningOpen) return events;
      events.push(...openReasoning());
      thought += delta;
      events.push(event('response.reasoning_text.delta', { ...reasoningPart(), delta }));
      return events;
    },
    delta: (delta, model, state) => {
      const events = [...start(state, model), ...closeReasoning(), ...openMessage()];
      text += delta;
      events.push(
        event('response.output_text.delta', {
          item_id: messageId,
          output_index: messageIndex,
          content_index: 0,
          delta,
          logprobs: [],
        }),
      );
      state.first = false;
      return events;
    },
    end: (answer, state) => {
      const events: unknown[] = [...start(state, answer.model), ...closeReasoning()];
      const calls = answer.toolCalls ?? [];
      const ids = idsFor(calls);
      if (hasMessage(answer)) {
        events.push(...openMessage());
        const part = { item_id: messageId, output_index: messageIndex, content_index: 0 };
        events.push(
          event('response.output_text.done', { ...part, text, logprobs: [] }),
          event('response.content_part.done', { ...part, part: textPart(text) }),
          event('response.output_item.done', {
            output_index: messageIndex,
            item: messageItem(messageId, text, 'completed'),
          }),
        );
      }
      calls.forEach((call, i) => {
        const output_index = items++;
        const item_id = ids[i];
        events.push(
          event('response.output_item.added', { output_index, item: callItem(item_id, call, 'in_progress') }),
        );
        for (const delta of fragments(call.arguments)) {
          events.push(event('response.function_call_arguments.delta', { item_id, output_index, delta }));
        }
        events.push(
          event('response.function_call_arguments.done', {
            item_id,
            output_index,
            name: call.name,
            arguments: call.arguments,
          }),
          event('response.output_item.done', { output_index, item: callItem(item_id, call, 'completed') }),
        );
      });
      const final = finished ?? completeResponse(answer, state);
      events.push(
        event(final.status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response: final }),
      );
      return events;
    },
    streamError: (error, _requestId, state) => [
      ...start(state, model),
      event('response.failed', {
        response: response(state, model, {
          status: 'failed',
          error: { code: error.code, message: error.message },
        }),
      }),
    ],
  };
}
