/**
 * One backend call over a model's upstreams and its fallbacks, in the order the request's
 * admission gives (scheduling/), until one answers. Only unreachable or saturated upstreams are
 * skipped: an upstream that answers with an error is the answer (502), and timeout_ms bounds the
 * whole call (504). Each attempt feeds its upstream's circuit breaker and has its own CLIENT span.
 */
import { Injectable } from '@nestjs/common';
import { DeadlineExceeded } from '../../contracts/generation';
import { BackendResponseError, BackendUnreachableError } from '../../contracts/backend-errors';
import type {
  EmbeddingParams,
  EmbeddingResult,
  GenerationParams,
  GenerationResult,
  StreamChunk,
} from '../../contracts/generation';
import type { ModelConfig } from '../../contracts/model-config';
import { EVENTS, GEN_AI, GEN_AI_OPERATIONS, inferenceSpanName } from '../../infra/tracing/trace-attributes';
import { Tracing, type TraceSpan } from '../../infra/tracing/tracing';
import type { CallHooks, LlmProvider } from '../providers/provider.types';
import type { Admission } from '../scheduling/model-scheduler';
import type { Candidate } from '../scheduling/model-registry';
import type { UpstreamBreaker } from '../scheduling/upstream-breaker';
import { deadline } from './deadline';
import { isRetryable } from './generation.errors';
import { operationName, resultAttributes, type TracedCall, upstreamAttributes } from './generation-trace';

export interface Served<T> {
  /** The model that answered: the requested one or one of its fallbacks. */
  model: ModelConfig;
  candidate: Candidate;
  value: T;
}

@Injectable()
export class UpstreamFailover {
  constructor(private readonly tracing: Tracing) {}

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
      for await (const candidate of admission.candidates()) {
        if (!candidate.breaker.tryAcquire(admission)) continue;
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
      for await (const candidate of admission.candidates()) {
        if (!candidate.breaker.tryAcquire(admission)) continue;
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
            } else if (chunk.type === 'done') {
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
