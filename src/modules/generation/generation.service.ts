/**
 * Turns a validated request into a backend call: resolves the model (404/403), applies the
 * defaults and configured bounds, has the request admitted by the model's scheduler (which may
 * queue it, see scheduling/), then calls the upstreams the admission gives, in the model's
 * load-balancing order, and its fallbacks until one answers. Only unreachable or saturated
 * upstreams are skipped: an upstream that answers with an error is the answer (502), and
 * timeout_ms bounds the whole call (504).
 */
import { Inject, Injectable } from '@nestjs/common';
import { AppError, invalidRequest } from '../../contracts/app-error';
import type { AppConfig } from '../../infra/config/app.config';
import { APP_CONFIG } from '../../infra/config/config.module';
import type { ModelConfig, ModelKind } from '../../contracts/model-config';
import type { AuthenticatedKey } from '../../contracts/authenticated-key';
import { DeadlineExceeded } from '../../contracts/generation';
import { deadline } from './deadline';
import { isRetryable } from './generation.errors';
import { BackendResponseError, BackendUnreachableError } from '../../contracts/backend-errors';
import type { CallHooks, LlmProvider } from '../providers/provider.types';
import type { UpstreamBreaker } from '../scheduling/upstream-breaker';
import { type Candidate, ModelRegistry } from '../scheduling/model-registry';
import type { SchedulingClass } from '../../contracts/scheduling';
import type { Admission } from '../scheduling/model-scheduler';
import { Scheduler } from '../scheduling/scheduler.service';
import type {
  ChatMessage,
  EmbeddingParams,
  EmbeddingResult,
  GenerationParams,
  GenerationResult,
  ResponseFormat,
  StreamChunk,
  ToolsParams,
} from '../../contracts/generation';
import { EVENTS, GEN_AI, GEN_AI_OPERATIONS, inferenceSpanName } from '../../infra/tracing/trace-attributes';
import { Tracing, type TraceSpan } from '../../infra/tracing/tracing';
import { operationName, resultAttributes, type TracedCall, upstreamAttributes } from './generation-trace';

/** A generation request in any of the API's shapes (/v1/generate, OpenAI completions or chat). */
export interface GenerationInput {
  model?: string | null;
  /** The prompt; '' for chat requests. */
  prompt: string;
  /** Chat requests: the conversation (non-empty). */
  messages?: ChatMessage[];
  maxNewTokens?: number | null;
  temperature?: number | null;
  topP?: number | null;
  topK?: number | null;
  stop?: string | string[] | null;
  seed?: number | null;
  stream?: boolean | null;
  /** Chat requests: the tools offered. */
  tools?: ToolsParams;
  responseFormat?: ResponseFormat;
}

/** The request field names of the caller's API, for `param` in 400 errors. */
export interface FieldNames {
  prompt: string;
  maxNewTokens: string;
}

const GENERATE_FIELDS: FieldNames = { prompt: 'prompt', maxNewTokens: 'max_new_tokens' };

export interface ResolvedRequest {
  model: ModelConfig;
  params: GenerationParams;
  stream: boolean;
  /** The key's place in the model's queue. */
  scheduling: SchedulingClass;
  /**
   * Set for an embedding request: the pipeline then embeds instead of generating (params only
   * carries the input text, for logs and cut estimates).
   */
  embedding?: EmbeddingParams;
}

export interface Served<T> {
  /** The model that answered: the requested one or one of its fallbacks. */
  model: ModelConfig;
  candidate: Candidate;
  value: T;
}

/** The text a request's prompt tokens come from (the prompt, or every message's content and tool calls). */
/** The key's place in a model's queue: its flow, priority class and share. */
function schedulingClass(key: AuthenticatedKey): SchedulingClass {
  return { keyId: key.id, priority: key.priority, weight: key.weight };
}

export function promptText(params: GenerationParams): string {
  if (!params.messages?.length) return params.prompt;
  return params.messages
    .map((message) => [message.content, ...(message.toolCalls ?? []).map((call) => call.arguments)].join('\n'))
    .join('\n');
}

@Injectable()
export class GenerationService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly registry: ModelRegistry,
    private readonly scheduler: Scheduler,
    private readonly tracing: Tracing,
  ) {}

  /**
   * The model a request names (else the default model), if the key may use it (404, 403) and
   * it serves this kind of request (400 naming `model`: chat models generate, embedding
   * models embed).
   */
  modelFor(name: string | null | undefined, key: AuthenticatedKey, kind: ModelKind): ModelConfig {
    const wanted = name ?? this.registry.defaultModel;
    const model = this.registry.find(wanted);
    if (!model) throw new AppError('model_not_found', `no model named "${wanted}" is configured`);
    if (key.models !== null && !key.models.includes(model.name)) {
      throw new AppError('model_not_allowed', `this API key may not use model "${model.name}"`);
    }
    if (model.kind !== kind) {
      throw invalidRequest(
        model.kind === 'embedding'
          ? `model "${model.name}" is an embedding model: it serves only /v1/embeddings`
          : `model "${model.name}" is not an embedding model (kind: ${model.kind} in models.yaml)`,
        'model',
      );
    }
    return model;
  }

  /**
   * An embedding request: the model (which must be of kind `embedding`) and the input bound by
   * MAX_PROMPT_CHARS (all texts together, or all token ids together).
   */
  resolveEmbedding(
    input: { model?: string | null; input: string[] | number[][]; dimensions?: number | null },
    key: AuthenticatedKey,
  ): ResolvedRequest {
    const size = input.input.reduce((sum, item) => sum + item.length, 0);
    if (size > this.config.maxPromptChars) {
      throw invalidRequest(
        `input must be at most ${this.config.maxPromptChars} characters (or token ids) in all`,
        'input',
      );
    }
    const model = this.modelFor(input.model, key, 'embedding');
    const texts = input.input.filter((item): item is string => typeof item === 'string');
    return {
      model,
      stream: false,
      scheduling: schedulingClass(key),
      // The text stands in for a prompt in logs and in the estimate of a request cut short.
      params: { prompt: texts.join('\n'), maxNewTokens: 0, temperature: 0, topP: 1, topK: 0, stop: [], seed: null },
      embedding: { input: input.input, dimensions: input.dimensions ?? null },
    };
  }

  /** Applies the bounds that depend on configuration and the model, then the defaults. */
  resolve(input: GenerationInput, key: AuthenticatedKey, fields: FieldNames = GENERATE_FIELDS): ResolvedRequest {
    const promptChars = input.messages
      ? input.messages.reduce((sum, m) => sum + m.content.length, 0)
      : input.prompt.length;
    if (promptChars > this.config.maxPromptChars) {
      throw invalidRequest(`${fields.prompt} must be at most ${this.config.maxPromptChars} characters`, fields.prompt);
    }
    const model = this.modelFor(input.model, key, 'chat');
    const maxNewTokens = input.maxNewTokens ?? model.defaultMaxNewTokens;
    if (maxNewTokens > model.maxNewTokens) {
      throw invalidRequest(
        `${fields.maxNewTokens} must be at most ${model.maxNewTokens} for model "${model.name}"`,
        fields.maxNewTokens,
      );
    }
    const stop = input.stop ?? [];
    return {
      model,
      stream: input.stream ?? false,
      scheduling: schedulingClass(key),
      params: {
        prompt: input.prompt,
        ...(input.messages ? { messages: input.messages } : {}),
        maxNewTokens,
        temperature: input.temperature ?? 1.0,
        topP: input.topP ?? 1.0,
        // -1 and 0 both mean "disabled"; providers see 0 only.
        topK: Math.max(0, input.topK ?? 0),
        stop: typeof stop === 'string' ? [stop] : stop,
        seed: input.seed ?? null,
        ...(input.tools ? { tools: input.tools } : {}),
        ...(input.responseFormat ? { responseFormat: input.responseFormat } : {}),
      },
    };
  }

  /**
   * Waits for the request's turn (at once unless the model's upstreams are at max_in_flight);
   * rejects with 503 overloaded, or with `signal`'s reason when the client leaves meanwhile.
   * Release the admission when the call is over. timeout_ms starts after it.
   */
  admit(request: ResolvedRequest, signal: AbortSignal): Admission | Promise<Admission> {
    return this.scheduler.admit(request.model, request.scheduling, request.params, signal);
  }

  generate(
    model: ModelConfig,
    params: GenerationParams,
    clientSignal: AbortSignal,
    admission: Admission,
    hooks?: CallHooks,
  ): Promise<Served<GenerationResult>> {
    const traced: TracedCall<GenerationResult> = {
      operation: operationName(params),
      params,
      describe: (result, servedBy) => ({
        attributes: resultAttributes(servedBy, result.finishReason, result.usage),
        output: result.output,
        finishReason: result.finishReason,
      }),
    };
    return this.callUpstreams(model, clientSignal, admission, traced, (provider, signal) =>
      provider.generate(params, signal, hooks),
    );
  }

  /** Embeds with the model's upstreams and fallbacks, exactly as generate() generates. */
  embed(
    model: ModelConfig,
    params: EmbeddingParams,
    clientSignal: AbortSignal,
    admission: Admission,
    hooks?: CallHooks,
  ): Promise<Served<EmbeddingResult>> {
    const traced: TracedCall<EmbeddingResult> = {
      operation: GEN_AI_OPERATIONS.embeddings,
      params: null,
      describe: (result, servedBy) => ({
        attributes: { [GEN_AI.responseModel]: servedBy, [GEN_AI.usageInputTokens]: result.usage.promptTokens },
      }),
    };
    return this.callUpstreams(model, clientSignal, admission, traced, (provider, signal) =>
      provider.embed(params, signal, hooks),
    );
  }

  /** One call, tried on each candidate in order until one answers (see the file comment). */
  private async callUpstreams<T>(
    model: ModelConfig,
    clientSignal: AbortSignal,
    admission: Admission,
    traced: TracedCall<T>,
    call: (provider: LlmProvider, signal: AbortSignal) => Promise<T>,
  ): Promise<Served<T>> {
    const bounded = deadline(clientSignal, model.timeoutMs);
    try {
      let lastError: unknown = null;
      for (const candidate of admission.candidates()) {
        if (!candidate.breaker.tryAcquire()) continue;
        try {
          const value = await this.tracing.span(
            inferenceSpanName(traced.operation, candidate.model.name),
            upstreamAttributes(candidate, traced.operation, traced.params),
            async (span) => {
              if (traced.params) span.recordContent({ input: traced.params.messages ?? traced.params.prompt });
              const result = await call(candidate.provider, bounded.signal);
              const answer = traced.describe(result, candidate.model.name);
              span.setAttributes(answer.attributes);
              if (answer.output !== undefined)
                span.recordContent({ output: answer.output, finishReason: answer.finishReason });
              return result;
            },
            { kind: 'client' },
          );
          candidate.breaker.success();
          return { model: candidate.model, candidate, value };
        } catch (error) {
          judge(candidate.breaker, error, bounded.signal);
          if (bounded.signal.aborted) throw bounded.signal.reason;
          if (!isRetryable(error)) throw error;
          lastError = error;
        }
      }
      throw lastError ?? allSkipped(model);
    } finally {
      bounded.dispose();
    }
  }

  /**
   * Streams from the first upstream that starts answering. Upstreams are skipped only before
   * their first chunk; after it, errors reach the caller (who has started its response).
   * The first value yielded identifies the serving candidate.
   */
  async *stream(
    model: ModelConfig,
    params: GenerationParams,
    clientSignal: AbortSignal,
    admission: Admission,
    hooks?: CallHooks,
  ): AsyncGenerator<Served<StreamChunk>> {
    const call = deadline(clientSignal, model.timeoutMs);
    try {
      let lastError: unknown = null;
      for (const candidate of admission.candidates()) {
        if (!candidate.breaker.tryAcquire()) continue;
        const span = this.startUpstreamSpan(candidate, params);
        // Bound to the span: the upstream request is made when the stream is first pulled.
        const chunks = this.tracing.bindIterable(span, candidate.provider.stream(params, call.signal, hooks));
        const iterator = chunks[Symbol.asyncIterator]();
        let first: IteratorResult<StreamChunk>;
        try {
          first = await iterator.next();
        } catch (error) {
          span.fail(error);
          span.end();
          judge(candidate.breaker, error, call.signal);
          if (call.signal.aborted) throw call.signal.reason;
          if (!isRetryable(error)) throw error;
          lastError = error;
          continue;
        }
        candidate.breaker.success(); // it answered; what happens later is not an outage
        let output = '';
        let firstToken = true;
        try {
          for (let next = first; !next.done; next = await iterator.next()) {
            const chunk = next.value;
            if (chunk.type === 'delta') {
              if (firstToken) span.addEvent(EVENTS.firstToken);
              firstToken = false;
              if (span.recording) output += chunk.text;
            } else {
              span.setAttributes(resultAttributes(candidate.model.name, chunk.finishReason, chunk.usage));
              span.recordContent({ output, finishReason: chunk.finishReason });
            }
            yield { model: candidate.model, candidate, value: chunk };
          }
        } catch (error) {
          const reason = call.signal.aborted ? call.signal.reason : error;
          span.fail(reason);
          throw reason;
        } finally {
          await iterator.return?.();
          span.end();
        }
        return;
      }
      throw lastError ?? allSkipped(model);
    } finally {
      call.dispose();
    }
  }

  /** The CLIENT span of one streamed upstream call, ended by the caller. */
  private startUpstreamSpan(candidate: Candidate, params: GenerationParams): TraceSpan {
    const operation = operationName(params);
    const span = this.tracing.startSpan(
      inferenceSpanName(operation, candidate.model.name),
      upstreamAttributes(candidate, operation, params),
      { kind: 'client' },
    );
    span.recordContent({ input: params.messages ?? params.prompt });
    return span;
  }
}

/**
 * What a failed attempt says about its upstream: unreachable, a timeout before any output, a
 * 5xx or garbage count against it; a refused request (4xx) proves it works; a client that left
 * or a busy in-process engine say nothing.
 */
function judge(breaker: UpstreamBreaker, error: unknown, signal: AbortSignal): void {
  if (signal.aborted) {
    if (signal.reason instanceof DeadlineExceeded) breaker.failure();
    else breaker.inconclusive();
  } else if (error instanceof BackendUnreachableError) {
    breaker.failure();
  } else if (error instanceof BackendResponseError) {
    if (error.upstreamStatus === null || error.upstreamStatus >= 500) breaker.failure();
    else breaker.success();
  } else {
    breaker.inconclusive();
  }
}

function allSkipped(model: ModelConfig): BackendUnreachableError {
  return new BackendUnreachableError(`every upstream of model "${model.name}" is skipped (circuit open)`);
}
