/**
 * How a finished or streaming answer is written, per API: our /v1/generate shape here, the
 * OpenAI shapes in src/openai. The generation pipeline is the same for all of them.
 */
import { generateResponse, generationId } from '../generate/generate-response';
import type { FinishReason, TokenUsage, ToolCall } from '../../contracts/generation';

export interface Answer {
  id: string;
  /** The model that answered. */
  model: string;
  output: string;
  finishReason: FinishReason;
  /** As reported to the client: zero for answers from the cache. */
  usage: TokenUsage;
  cached: boolean;
  /** Calls the model made (chat with tools); absent or empty: none. */
  toolCalls?: ToolCall[];
  /** Embedding requests: one vector per input. */
  embeddings?: number[][];
}

/** Per-response state a streaming format may keep (e.g. whether the first chunk went out). */
export interface StreamState {
  id: string;
  created: number;
  first: boolean;
}

export interface AnswerFormat {
  /** The JSON body of a complete answer. */
  body(answer: Answer, state: StreamState): unknown;
  /** SSE payloads for one delta. */
  delta(text: string, model: string, state: StreamState): unknown[];
  /** SSE payloads that close a successful stream (before `[DONE]`). */
  end(answer: Answer, state: StreamState): unknown[];
  /** A new response id. */
  newId(): string;
}

function generateBody(answer: Answer) {
  const result = { output: answer.output, finishReason: answer.finishReason, usage: answer.usage };
  return generateResponse(answer.id, answer.model, result, answer.cached);
}

/** POST /v1/generate: our own JSON body; SSE deltas `{id, model, delta}`, then the body with `done: true`. */
export const GENERATE_FORMAT: AnswerFormat = {
  newId: generationId,
  body: generateBody,
  delta: (text, model, state) => [{ id: state.id, model, delta: text }],
  end: (answer) => [{ ...generateBody(answer), done: true }],
};
