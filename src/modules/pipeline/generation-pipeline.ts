/**
 * One generation request, whatever API shape it came in, from the quota check to the last
 * byte; embedding requests (`request.embedding`) take the same path with an embedding call as
 * their backend call, so keys, limits, quotas, the cache, coalescing, metrics and the usage
 * ledger treat them alike. The order of checks (API.md): authentication (401, ApiKeyGuard) → rate limit (429,
 * RateLimitGuard) → request validation (400, pipe + GenerationService.resolve) → model
 * (404/403, resolve) → quota (402, UsageAccounting.begin) → cache → backend.
 *
 * - Cache: CompletionCache answers from the cache (`cached: true`), from an identical
 *   generation already running, or from a new backend call.
 * - Cost: one request unit reserved up front for keys with a quota; what the request pays once
 *   it is over is decided by usage/billing.ts from how its generation ended (answered, failed,
 *   cut, shared), and settled before the answer is sent.
 * - The backend call is aborted the moment no client waits for it any more.
 * - The work is tracked (InFlightWork) so a shutdown waits for its billing.
 */
import { Inject, Injectable } from '@nestjs/common';
import type { Response } from 'express';
import { cacheKey, embeddingCacheKey } from '../cache/cache-key';
import { CompletionCache } from '../cache/completion-cache.service';
import type { FlightReporter, FlightResult, FlightRunner } from '../cache/flight';
import { backendWaitEnded, backendWaitStarted } from '../../contracts/gateway-overhead';
import { InFlightWork } from '../../infra/lifecycle/in-flight-work';
import type { AppRequest } from '../../contracts/request-context';
import type { AppConfig } from '../../infra/config/app.config';
import { APP_CONFIG } from '../../infra/config/config.module';
import { ClientDisconnected, type StreamChunk, type TokenUsage } from '../../contracts/generation';
import { APP_LOGGER, type AppLogger } from '../../infra/logging/logger';
import { LlmMetricsService, outcomeForErrorCode } from '../../infra/metrics/llm-metrics.service';
import { chargeFor, FREE } from '../usage/billing';
import { UsageAccounting } from '../usage/usage-accounting';
import { cutStreamUsage } from '../usage/usage-estimate';
import type { Answer, AnswerFormat } from '../../http/responses/answer-format';
import { toGenerationError } from '../generation/generation.errors';
import { GenerationService, promptText, type ResolvedRequest } from '../generation/generation.service';
import { BackendResponseError } from '../../contracts/backend-errors';
import type { SseTimings } from '../../http/responses/sse-writer';
import { StreamResponse } from '../../http/responses/stream-response';
import type { Admission } from '../scheduling/model-scheduler';
import { KeyConcurrency } from '../limits/key-concurrency';
import { Tracing } from '../../infra/tracing/tracing';
import { GEN_AI_OPERATIONS, LLM, SPANS } from '../../infra/tracing/trace-attributes';
import { operationName, requestAttributes, resultAttributes } from '../generation/generation-trace';

const NO_TOKENS: TokenUsage = { promptTokens: 0, completionTokens: 0 };

/** An AbortSignal that fires when the client closes the connection before the response ends. */
function disconnectSignal(res: Response): AbortSignal {
  const controller = new AbortController();
  // The client may have left while the guards ran: 'close' has fired already then.
  if (res.destroyed) controller.abort(new ClientDisconnected());
  res.once('close', () => {
    if (!res.writableFinished) controller.abort(new ClientDisconnected());
  });
  return controller.signal;
}

@Injectable()
export class GenerationPipeline {
  private readonly sseTimings: SseTimings;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly generation: GenerationService,
    private readonly accounting: UsageAccounting,
    private readonly cache: CompletionCache,
    private readonly metrics: LlmMetricsService,
    private readonly work: InFlightWork,
    private readonly concurrency: KeyConcurrency,
    @Inject(APP_LOGGER) private readonly logger: AppLogger,
    private readonly tracing: Tracing,
  ) {
    this.sseTimings = { stallTimeoutMs: config.sseStallTimeoutMs, heartbeatMs: config.sseHeartbeatMs };
  }

  run(request: ResolvedRequest, format: AnswerFormat, req: AppRequest, res: Response): Promise<void> {
    const limit = req.ctx.apiKey!.maxConcurrent; // null: no lease, not even a promise
    return this.work.track(
      limit === null
        ? this.serve(request, format, req, res)
        : this.serveWithinConcurrency(limit, request, format, req, res),
    );
  }

  /** The key's max_concurrent (429) is checked before its quota and held until the response ends. */
  private async serveWithinConcurrency(
    limit: number,
    request: ResolvedRequest,
    format: AnswerFormat,
    req: AppRequest,
    res: Response,
  ): Promise<void> {
    const release = await this.concurrency.enter(req.ctx.apiKey!, limit, res);
    try {
      await this.serve(request, format, req, res);
    } finally {
      release();
    }
  }

  private async serve(request: ResolvedRequest, format: AnswerFormat, req: AppRequest, res: Response): Promise<void> {
    const { model, params } = request;
    const span = this.tracing.requestSpan();
    if (span.recording) {
      const operation = request.embedding ? GEN_AI_OPERATIONS.embeddings : operationName(params);
      span.setAttributes(requestAttributes(model, operation, request.embedding ? null : params));
    }
    const deadlineAt = Date.now() + model.timeoutMs;
    const clientSignal = disconnectSignal(res);
    const policy = this.cache.policy(model, req.headers['cache-control']);
    const cached = policy.lookup || policy.share || policy.store;
    const key = !cached
      ? ''
      : request.embedding
        ? embeddingCacheKey(model, request.embedding)
        : cacheKey(model, params);
    // The quota (402) is decided before the cache answers (a database round trip only for keys
    // with a quota).
    const usage = await this.accounting.begin(req.ctx.apiKey!, model.name);
    const state = { id: format.newId(), created: Math.floor(Date.now() / 1000), first: true };
    const stream = request.stream ? new StreamResponse(res, format, state, this.sseTimings) : null;
    const respond = async (answer: Answer): Promise<void> => {
      if (stream) await stream.end(answer);
      else res.status(200).json(format.body(answer, state));
    };
    const setQuotaHeaders = () => {
      if (!res.headersSent) for (const [name, value] of Object.entries(usage.headers)) res.setHeader(name, value);
    };
    try {
      setQuotaHeaders();
      if (clientSignal.aborted) return; // gone before anything ran: free
      const onDelta = stream ? (text: string, served: string) => stream.delta(text, served) : undefined;
      const runner = this.backendCall(request, stream !== null, req);
      const { outcome, source } = await this.cache.serve(
        key,
        model,
        policy,
        clientSignal,
        runner,
        deadlineAt,
        onDelta,
        {
          joined: () => backendWaitStarted(req.ctx),
        },
      );
      backendWaitEnded(req.ctx);
      if (policy.lookup || policy.share) this.metrics.cacheResult(model.name, source);
      span.setAttributes({ [LLM.cacheResult]: policy.lookup || policy.share ? source : 'bypass' });
      const estimate = (produced: number) => cutStreamUsage(promptText(params), produced, params.maxNewTokens);
      const charge = chargeFor(outcome, estimate);
      if (outcome.kind === 'answer') {
        const { answer, payer } = outcome;
        const { finishReason, usage: tokens } = answer.result;
        if (span.recording)
          span.setAttributes(resultAttributes(answer.model, finishReason, payer ? tokens : NO_TOKENS));
        // Charged before answering, so a client that has its answer also sees it accounted.
        await usage.settle(charge, answer.model);
        const { toolCalls, embeddings } = answer.result;
        await respond({
          id: state.id,
          model: answer.model,
          output: answer.result.output,
          finishReason: answer.result.finishReason,
          usage: payer ? answer.result.usage : NO_TOKENS,
          cached: !payer,
          ...(toolCalls?.length ? { toolCalls } : {}),
          ...(embeddings ? { embeddings } : {}),
        });
        return;
      }
      await usage.settle(charge, outcome.progress.servedBy ?? model.name);
      if (outcome.kind === 'left') return;
      setQuotaHeaders(); // an error answer not yet sent shows a unit given back
      const appError = toGenerationError(outcome.error, model.name);
      if (!stream?.started) throw appError;
      if (appError.code === 'internal_error') {
        this.logger.error({ request_id: req.ctx.requestId, err: outcome.error }, 'stream failed');
      }
      await stream.fail(appError, req.ctx.requestId);
    } finally {
      await usage.settle(FREE); // does nothing once the request was settled
    }
  }

  /**
   * The backend call a (possibly shared) generation makes: its admission by the model's scheduler
   * (a wait in the queue, or 503 overloaded), then the call, measured for the LLM metrics. From
   * its start the starting request waits on the backend (not gateway overhead).
   */
  private backendCall(request: ResolvedRequest, streaming: boolean, req: AppRequest): FlightRunner {
    return async (signal, report): Promise<FlightResult> => {
      backendWaitStarted(req.ctx);
      const admitted = this.generation.admit(request, signal);
      // A span only for a request that waits its turn (a model at max_in_flight).
      const admission =
        admitted instanceof Promise ? await this.tracing.span(SPANS.queue, {}, () => admitted) : admitted;
      try {
        return await this.callBackend(request, streaming, admission, signal, report);
      } finally {
        admission.release();
      }
    };
  }

  private async callBackend(
    request: ResolvedRequest,
    streaming: boolean,
    admission: Admission,
    signal: AbortSignal,
    report: FlightReporter,
  ): Promise<FlightResult> {
    const { model, params } = request;
    const call = this.metrics.startRequest(model.name, model.provider);
    const hooks = { accepted: report.accepted };
    try {
      if (request.embedding) {
        const served = await this.generation.embed(model, request.embedding, signal, admission, hooks);
        call.servedBy(served.model.name, served.candidate.provider.kind);
        call.finish('success', served.value.usage);
        const { vectors: embeddings, usage } = served.value;
        return { model: served.model.name, result: { output: '', finishReason: 'stop', usage, embeddings } };
      }
      if (!streaming) {
        const served = await this.generation.generate(model, params, signal, admission, hooks);
        call.servedBy(served.model.name, served.candidate.provider.kind);
        call.finish('success', served.value.usage);
        return { model: served.model.name, result: served.value };
      }
      let output = '';
      let servedBy = model.name;
      let done: Extract<StreamChunk, { type: 'done' }> | null = null;
      const chunks = this.generation.stream(model, params, signal, admission, hooks);
      for await (const { model: served, candidate, value: chunk } of chunks) {
        servedBy = served.name;
        call.servedBy(served.name, candidate.provider.kind);
        if (chunk.type === 'done') {
          done = chunk;
        } else {
          call.firstToken();
          output += chunk.text;
          report.emit(chunk.text, served.name);
        }
      }
      if (!done) throw new BackendResponseError('upstream stream ended without its final chunk');
      call.finish('success', done.usage);
      const { finishReason, usage, toolCalls } = done;
      return { model: servedBy, result: { output, finishReason, usage, ...(toolCalls ? { toolCalls } : {}) } };
    } catch (error) {
      call.finish(
        error instanceof ClientDisconnected
          ? 'aborted'
          : outcomeForErrorCode(toGenerationError(error, model.name).code),
      );
      throw error;
    } finally {
      call.finish('error'); // counts only if nothing above did
    }
  }
}
