/**
 * The shapes generation, usage and the cache share: a request's parameters after validation,
 * what a generation produces, and how a stream ends. A leaf module: it imports nothing of the
 * app, so every capability can depend on it without depending on each other.
 */
/** One chat message; content parts were already flattened to one string by the HTTP layer. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/**
 * Request parameters after validation and defaults: providers never see `undefined`.
 *
 * A request is a chat request when `messages` is present and non-empty: providers then send the
 * messages to the backend's chat endpoint (or render them with the model's chat template) and
 * ignore `prompt` (callers may set it to '' or to a rendering for logs). Everything else (the
 * sampling fields, streaming, abort, usage, finish reason, errors) has the same contract for
 * both kinds of request.
 */
export interface GenerationParams {
  prompt: string;
  /** Chat messages, in order; see above. */
  messages?: ChatMessage[];
  maxNewTokens: number;
  temperature: number;
  topP: number;
  /** 0 means disabled (the API's -1 is normalised to 0 before this point). */
  topK: number;
  /** Possibly empty; at most 4 strings. */
  stop: string[];
  seed: number | null;
}

/** The chat messages of a chat request, or null for a plain completion. */
export function chatMessagesOf(params: GenerationParams): ChatMessage[] | null {
  return params.messages && params.messages.length > 0 ? params.messages : null;
}

export type FinishReason = 'stop' | 'length';

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
}

export interface GenerationResult {
  output: string;
  finishReason: FinishReason;
  usage: TokenUsage;
}

/** Streams yield text deltas and end with exactly one `done` chunk. */
export type StreamChunk =
  { type: 'delta'; text: string } | { type: 'done'; finishReason: FinishReason; usage: TokenUsage };

/** The reason used when the client went away. */
export class ClientDisconnected extends Error {
  override readonly name = 'ClientDisconnected';
}

/** The reason a call's deadline signal carries, to tell a timeout from a client disconnect. */
export class DeadlineExceeded extends Error {
  override readonly name = 'DeadlineExceeded';
}
