/**
 * Where a generation's answer goes: the pipeline (modules/pipeline) produces it, the HTTP layer
 * writes it in the request's API shape, as one JSON body or as a stream of events
 * (http/responses/). The pipeline sees only this interface.
 */
import type { AppError } from './app-error';
import type { FinishReason, TokenUsage, ToolCall } from './generation';

export interface Answer {
  /** The model that answered. */
  model: string;
  output: string;
  finishReason: FinishReason;
  /** As reported to the client: zero for answers from the cache. */
  usage: TokenUsage;
  cached: boolean;
  /** Calls the model made (chat with tools); absent or empty: none. */
  toolCalls?: ToolCall[];
  /** Reasoning text apart from the answer, when the backend returned some. */
  reasoning?: string;
  /** The stop string that ended the output, when the backend said which. */
  stopSequence?: string;
  /** Embedding requests: one vector per input. */
  embeddings?: number[][];
}

export interface AnswerSink {
  /** The client asked for a stream: deltas are sent as they come. */
  readonly streaming: boolean;
  /** Something was sent already: an error can then only go in-band (fail()). */
  readonly started: boolean;
  /** The request passed its checks and is about to wait for its answer (a stream keeps the connection alive from here). */
  open(): void;
  /** One delta of output (streams); `reasoning`: of the reasoning text apart from the answer. */
  delta(text: string, model: string, kind?: 'reasoning'): void;
  /** The complete answer: the JSON body, or a stream's closing events. */
  answer(answer: Answer): Promise<void>;
  /** An error after the response started (streams): sent in-band, then the stream ends. */
  fail(error: AppError): Promise<void>;
}
