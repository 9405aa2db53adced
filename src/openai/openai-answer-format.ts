/**
 * The OpenAI answer formats for the generation pipeline: `text_completion` and
 * `chat.completion` bodies; streamed `text_completion` / `chat.completion.chunk` chunks, the
 * last content chunk carrying `finish_reason`, then (with `stream_options.include_usage`) a
 * chunk with the usage and no choices, then `data: [DONE]`.
 */
import type { AnswerFormat } from '../generation/answer-format';
import { answerBody, type OpenAiKind, openAiId, streamChunk, usageChunk } from './openai-format';

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
      ),
    delta: (text, model, state) => [
      streamChunk(kind, { id: state.id, created: state.created, model }, text, null, state.first),
    ],
    end: (answer, state) => {
      const env = { id: state.id, created: state.created, model: answer.model };
      const closing = [streamChunk(kind, env, null, answer.finishReason, state.first)];
      return includeUsage ? [...closing, usageChunk(kind, env, answer.usage)] : closing;
    },
  };
}
