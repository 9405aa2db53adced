/**
 * How a finished or streaming answer is written, per API: /v1/generate's shape in
 * http/generate, the OpenAI shapes in http/openai. The generation pipeline is the same for all.
 */
import type { Answer } from '../../contracts/answer';
import type { AppError } from '../../contracts/app-error';

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
  /** SSE payloads for one delta of reasoning text; absent: the API shows no reasoning (dropped). */
  reasoningDelta?(text: string, model: string, state: StreamState): unknown[];
  /** SSE payloads that close a successful stream (before `[DONE]`). */
  end(answer: Answer, state: StreamState): unknown[];
  /** A new response id. */
  newId(): string;
  /**
   * Typed streams (OpenAI Responses, Anthropic Messages): each SSE event is named by its
   * payload's `type` (`event: <type>`), which is how those SDKs dispatch them, and no
   * `data: [DONE]` ends the stream (their last event says it is over).
   */
  typedEvents?: boolean;
  /** The in-band error of a stream that already started; absent: the error envelope. */
  streamError?(error: AppError, requestId: string, state: StreamState): unknown[];
  /**
   * Runs once the answer is complete and before it is written (JSON or the closing events), so
   * what it does (Responses: storing the response) is done when the client sees the end.
   */
  finish?(answer: Answer, state: StreamState): Promise<void>;
}
