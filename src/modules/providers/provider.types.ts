/**
 * The one interface every backend implements. The generation service owns routing,
 * fallbacks, timeouts and the HTTP response; a provider only talks to one upstream
 * (one base URL, one keep-alive pool) or one in-process engine.
 */
import type { ModelConfig, ProviderKind } from '../../contracts/model-config';
import type {
  EmbeddingParams,
  EmbeddingResult,
  GenerationParams,
  GenerationResult,
  StreamChunk,
} from '../../contracts/generation';

/** Hooks a provider call reports through (all optional). */
export interface CallHooks {
  /**
   * The backend has the request: it was written to the upstream connection, or an in-process
   * engine started on it. A client leaving after this point is billed for the prompt.
   */
  accepted?(): void;
}

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
  generate(params: GenerationParams, signal: AbortSignal, hooks?: CallHooks): Promise<GenerationResult>;
  /** Same contract as generate(); errors may come before the first chunk or after it. */
  stream(params: GenerationParams, signal: AbortSignal, hooks?: CallHooks): AsyncIterable<StreamChunk>;
  /**
   * Embeds the inputs (models of kind `embedding`); same error and abort contract as
   * generate(). Rejects with UnsupportedRequestError for what the backend cannot take (token-id
   * input, `dimensions`).
   */
  embed(params: EmbeddingParams, signal: AbortSignal, hooks?: CallHooks): Promise<EmbeddingResult>;
  /** Cheap readiness probe (never a generation); rejects when not ready. */
  checkReady(signal: AbortSignal): Promise<void>;
  /** Closes pools, engines and sockets. */
  close(): Promise<void>;
}

/** Builds one provider for one upstream of a model (upstream is null for in-process kinds). */
export type ProviderFactory = (model: ModelConfig, upstream: { baseUrl: string } | null) => LlmProvider;

/** The injection token of the ProviderFactory (ProvidersModule; tests may swap it). */
export const PROVIDER_FACTORY = Symbol('PROVIDER_FACTORY');
