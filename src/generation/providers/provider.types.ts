/**
 * The one interface every backend implements. The generation service owns routing,
 * fallbacks, timeouts and the HTTP response; a provider only talks to one upstream
 * (one base URL, one keep-alive pool) or one in-process engine.
 */
import type { ModelConfig, ProviderKind } from '../../config/models.types';

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

export interface LlmProvider {
  readonly kind: ProviderKind;
  /** A label for metrics and logs that is never a raw URL with credentials, e.g. "vllm-0:8000". */
  readonly upstreamLabel: string;
  /** Starts whatever the provider needs (in-process engines load their model here). */
  init?(): Promise<void>;
  /**
   * Rejects with a BackendError subclass (see backend.errors.ts). When `signal` aborts, the
   * upstream request is aborted at once and the promise rejects with the signal's reason.
   */
  generate(params: GenerationParams, signal: AbortSignal): Promise<GenerationResult>;
  /** Same contract as generate(); errors may come before the first chunk or after it. */
  stream(params: GenerationParams, signal: AbortSignal): AsyncIterable<StreamChunk>;
  /** Cheap readiness probe (never a generation); rejects when not ready. */
  checkReady(signal: AbortSignal): Promise<void>;
  /** Closes pools, engines and sockets. */
  close(): Promise<void>;
}

/** Builds one provider for one upstream of a model (upstream is null for in-process kinds). */
export type ProviderFactory = (model: ModelConfig, upstream: { baseUrl: string } | null) => LlmProvider;
