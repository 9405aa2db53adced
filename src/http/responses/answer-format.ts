/**
 * How a finished or streaming answer is written, per API: /v1/generate's shape in
 * http/generate, the OpenAI shapes in http/openai. The generation pipeline is the same for all.
 */
import type { Answer } from '../../contracts/answer';

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
