/**
 * The OpenAI answer formats for the generation pipeline: `text_completion` and
 * `chat.completion` bodies; streamed `text_completion` / `chat.completion.chunk` chunks, the
 * tool calls (chat; they are complete once the backend is done with them, see
 * openai-format.ts), the chunk carrying `finish_reason`, then (with
 * `stream_options.include_usage`) a chunk with the usage and no choices, then `data: [DONE]`.
 * An answer from the cache is replayed the same way: its text as one delta, then its calls.
 */
import type { AnswerFormat } from '../responses/answer-format';
import { answerBody, type OpenAiKind, openAiId, streamChunk, toolCallChunks, usageChunk } from './openai-format';

export function openAiAnswerFormat(kind: OpenAiKind, includeUsage: boolean): AnswerFormat {
  return {
    newId: () => openAiId(kind),
    body: (answer, state) =>
      answerBody(
        kind,
        { id: state.id, created: state.created, model: answer.model },
        answer.output,
        answer.finishReason,
        answer.usage,
        answer.cached,
        answer.toolCalls,
      ),
    delta: (text, model, state) => [
      streamChunk(kind, { id: state.id, created: state.created, model }, text, null, state.first),
    ],
    end: (answer, state) => {
      const env = { id: state.id, created: state.created, model: answer.model };
      const calls =
        kind === 'chat' && answer.toolCalls?.length ? toolCallChunks(env, answer.toolCalls, state.first) : [];
      const first = state.first && calls.length === 0;
      const closing = [...calls, streamChunk(kind, env, null, answer.finishReason, first)];
      return includeUsage ? [...closing, usageChunk(kind, env, answer.usage)] : closing;
    },
  };
}
