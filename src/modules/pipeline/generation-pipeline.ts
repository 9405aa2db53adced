/**
 * One generation request, whatever API shape it came in, from its limits to its bill, in the
 * order of API.md (authentication, the rate limit, validation and the model were checked
 * before: http/guards, the validation pipe, RequestResolver):
 *
 *   concurrency (429) → quota (402) → cache / coalescing → schedule → upstream → bill → answer
 *
 * - Concurrency: a key with max_concurrent holds one of its slots until the answer is written.
 * - Quota: one request unit reserved up front for keys with a quota (UsageAccounting.begin).
 * - Cache: CompletionCache answers from the cache (`cached: true`), from an identical
 *   generation already running, or from a new backend call (BackendCalls: the scheduler's
 *   admission, then the upstreams and fallbacks).
 * - Bill: what the request pays is decided by usage/billing.ts from how its generation ended
 *   (answered, failed, cut, shared), and settled before the answer is sent.
 * Embedding requests (`request.embedding`) take the same path with an embedding call as their
 * backend call. The backend call is aborted the moment no client waits for it any more, and the
 * work is tracked (InFlightWork) so a shutdown waits for its billing. The answer goes to an
 * AnswerSink (contracts/answer.ts): the pipeline knows nothing of HTTP.
 */
import { Inject, Injectable } from '@nestjs/common';
import type { AnswerSink } from '../../contracts/answer';
import { backendWaitEnded, backendWaitStarted } from '../../contracts/gateway-overhead';
import { promptText, type TokenUsage } from '../../contracts/generation';
import { longestAnswerMs } from '../../contracts/model-config';
import type { RequestContext } from '../../contracts/request-context';
import { InFlightWork } from '../../infra/lifecycle/in-flight-work';
import { APP_LOGGER, type AppLogger } from '../../infra/logging/logger';
import { LlmMetricsService } from '../../infra/metrics/llm-metrics.service';
import { GEN_AI_OPERATIONS, LLM } from '../../infra/tracing/trace-attributes';
import { Tracing } from '../../infra/tracing/tracing';
import { cacheKey, embeddingCacheKey } from '../cache/cache-key';
import { CompletionCache } from '../cache/completion-cache.service';
import { BackendCalls } from '../generation/backend-call';
import { toGenerationError } from '../generation/generation.errors';
import { operationName, requestAttributes, resultAttributes } from '../generation/generation-trace';
import type { ResolvedRequest } from '../generation/request-resolver';
import { KeyConcurrency } from '../limits/key-concurrency';
import { chargeFor, FREE } from '../usage/billing';
import { UsageAccounting } from '../usage/usage-accounting';
import { cutStreamUsage } from '../../contracts/token-estimate';
import { largestRequestCost } from '../usage/request-cost';

const NO_TOKENS: TokenUsage = { promptTokens: 0, completionTokens: 0 };

@Injectable()
export class GenerationPipeline {
  constructor(
    private readonly concurrency: KeyConcurrency,
    private readonly accounting: UsageAccounting,
    private readonly cache: CompletionCache,
    private readonly backend: BackendCalls,
    private readonly metrics: LlmMetricsService,
    private readonly work: InFlightWork,
    private readonly tracing: Tracing,
    @Inject(APP_LOGGER) private readonly logger: AppLogger,
  ) {}

  /**
   * Serves `request` for the client of `ctx` into `sink`; `clientSignal` fires when that client
   * goes away; `cacheControl` is its Cache-Control header.
   */
  run(
    request: ResolvedRequest,
    ctx: RequestContext,
    sink: AnswerSink,
    clientSignal: AbortSignal,
    cacheControl: string | undefined,
  ): Promise<void> {
    const serve = () => this.serve(request, ctx, sink, clientSignal, cacheControl);
    // No max_concurrent on the key or its team: no lease, not even a promise.
    return this.work.track(KeyConcurrency.limited(ctx) ? this.withinConcurrency(ctx, serve) : serve());
  }

  /** The max_concurrent of the key and its team (429) is checked before quotas and held until the answer is written. */
  private async withinConcurrency(ctx: RequestContext, serve: () => Promise<void>): Promise<void> {
    const release = await this.concurrency.enter(ctx);
    try {
      await serve();
    } finally {
      release();
    }
  }

  private async serve(
    request: ResolvedRequest,
    ctx: RequestContext,
    sink: AnswerSink,
    clientSignal: AbortSignal,
    cacheControl: string | undefined,
  ): Promise<void> {
    const { model, params } = request;
    const span = this.tracing.requestSpan();
    if (span.recording) {
      const operation = request.embedding ? GEN_AI_OPERATIONS.embeddings : operationName(params);
      span.setAttributes(requestAttributes(model, operation, request.embedding ? null : params));
    }
    const deadlineAt = Date.now() + longestAnswerMs(model);
    const policy = this.cache.policy(model, cacheControl);
    const cached = policy.lookup || policy.share || policy.store;
    const key = !cached
      ? ''
      : request.embedding
        ? embeddingCacheKey(model, request.embedding)
        : cacheKey(model, params);
    // Quotas and budgets (402) are decided before the cache answers (a database round trip only
    // for keys and teams with one); a budget reserves the largest cost the request can have.
    const usage = await this.accounting.begin(ctx.apiKey!, model.name, largestRequestCost(request));
    // The quota's figures as of now; after a free settlement they show the unit given back.
    const showQuota = () => {
      if (usage.quota) ctx.limits.quota = usage.quota;
    };
    try {
      showQuota();
      if (clientSignal.aborted) return; // gone before anything ran: free
      const onDelta = sink.streaming ? (text: string, served: string) => sink.delta(text, served) : undefined;
      const runner = this.backend.runner(request, sink.streaming, ctx);
      const { outcome, source } = await this.cache.serve(
        key,
        model,
        policy,
        clientSignal,
        runner,
        deadlineAt,
        onDelta,
        {
          joined: () => backendWaitStarted(ctx),
          // Nothing is sent while the request waits its turn: shed, it is still a plain JSON 503.
          admitted: () => sink.open(),
        },
      );
      backendWaitEnded(ctx);
      if (policy.lookup || policy.share) this.metrics.cacheResult(model.name, source);
      span.setAttributes({ [LLM.cacheResult]: policy.lookup || policy.share ? source : 'bypass' });
      const estimate = (produced: number) => cutStreamUsage(promptText(params), produced, params.maxNewTokens);
      const charge = chargeFor(outcome, estimate);
      if (outcome.kind === 'answer') {
        const { answer, payer } = outcome;
        const { finishReason, usage: tokens, toolCalls, embeddings } = answer.result;
        if (span.recording)
          span.setAttributes(resultAttributes(answer.model, finishReason, payer ? tokens : NO_TOKENS));
        // Charged before answering, so a client that has its answer also sees it accounted.
        await usage.settle(charge, answer.model);
        await sink.answer({
          model: answer.model,
          output: answer.result.output,
          finishReason,
          usage: payer ? tokens : NO_TOKENS,
          cached: !payer,
          ...(toolCalls?.length ? { toolCalls } : {}),
          ...(embeddings ? { embeddings } : {}),
        });
        return;
      }
      await usage.settle(charge, outcome.progress.servedBy ?? model.name);
      if (outcome.kind === 'left') return;
      showQuota(); // an error answer not yet sent shows a unit given back
      const appError = toGenerationError(outcome.error, model.name);
      if (!sink.started) throw appError;
      if (appError.code === 'internal_error') {
        this.logger.error({ request_id: ctx.requestId, err: outcome.error }, 'stream failed');
      }
      await sink.fail(appError);
    } finally {
      await usage.settle(FREE); // does nothing once the request was settled
    }
  }
}
