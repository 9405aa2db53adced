/**
 * One generation request, whatever API shape it came in, from the quota check to the last
 * byte. The order of checks (API.md): authentication (401, ApiKeyGuard) → rate limit (429,
 * RateLimitGuard) → request validation (400, pipe + GenerationService.resolve) → model
 * (404/403, resolve) → quota (402, UsageAccounting.begin) → cache → backend.
 *
 * - Cache: a hit answers at once with `cached: true` (one request unit, zero tokens). A miss
 *   joins an identical generation already running, or starts one (CompletionCache); requests
 *   that joined answer with `cached: true` too.
 * - Cost (UsageAccounting): one request unit reserved up front; the real tokens once the
 *   answer is complete. Free (the unit goes back) when the backend fails — also mid-stream —
 *   or when the client leaves before any output. A stream the client cuts after some output
 *   is charged for what was produced (usage-estimate.ts).
 * - The backend call is aborted the moment no client waits for it any more.
 */
import { Inject, Injectable } from '@nestjs/common';
import type { Response } from 'express';
import { cacheKey } from '../cache/cache-key';
import { CompletionCache } from '../cache/completion-cache.service';
import type { FlightResult, FlightRunner } from '../cache/flight';
import type { AppRequest } from '../common/request-context';
import { APP_LOGGER, type AppLogger } from '../logging/logger';
import { LlmMetricsService, outcomeForErrorCode } from '../metrics/llm-metrics.service';
import { UsageAccounting } from '../usage/usage-accounting';
import { cutStreamUsage } from '../usage/usage-estimate';
import type { Answer, AnswerFormat } from './answer-format';
import { ClientDisconnected, toGenerationError } from './generation.errors';
import { GenerationService, promptText, type ResolvedRequest } from './generation.service';
import { BackendResponseError } from './providers/backend.errors';
import type { StreamChunk, TokenUsage } from './providers/provider.types';
import { StreamResponse } from './stream-response';

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
  constructor(
    private readonly generation: GenerationService,
    private readonly accounting: UsageAccounting,
    private readonly cache: CompletionCache,
    private readonly metrics: LlmMetricsService,
    @Inject(APP_LOGGER) private readonly logger: AppLogger,
  ) {}

  async run(request: ResolvedRequest, format: AnswerFormat, req: AppRequest, res: Response): Promise<void> {
    const { model, params } = request;
    const clientSignal = disconnectSignal(res);
    const policy = this.cache.policy(model, req.headers['cache-control']);
    const key = policy.lookup || policy.share || policy.store ? cacheKey(model, params) : '';
    // The quota (402) is decided before the cache answers; the two round trips overlap, and a
    // lookup whose reservation failed is ignored (lookup() never rejects).
    const lookup = policy.lookup ? this.cache.lookup(key) : Promise.resolve(null);
    const usage = await this.accounting.begin(req.ctx.apiKey!, model.name);
    const state = { id: format.newId(), created: Math.floor(Date.now() / 1000), first: true };
    const stream = request.stream ? new StreamResponse(res, format, state) : null;
    const respond = async (answer: Answer): Promise<void> => {
      if (stream) await stream.end(answer);
      else res.status(200).json(format.body(answer, state));
    };
    const setQuotaHeaders = () => {
      if (!res.headersSent) for (const [name, value] of Object.entries(usage.headers)) res.setHeader(name, value);
    };
    let joined = false;
    try {
      setQuotaHeaders();
      const counted = policy.lookup || policy.share;

      const hit = await lookup;
      if (hit) {
        this.metrics.cacheResult(model.name, 'hit');
        await usage.complete(NO_TOKENS, { cached: true, model: hit.model });
        const answer = { id: state.id, model: hit.model, output: hit.output, finishReason: hit.finishReason };
        await respond({ ...answer, usage: NO_TOKENS, cached: true });
        return;
      }

      const onDelta = stream ? (text: string, served: string) => stream.delta(text, served) : undefined;
      const runner = this.backendCall(request, stream !== null);
      const { answer, source } = await this.cache.run(key, model, policy, clientSignal, runner, onDelta, () => {
        joined = true;
      });
      if (counted) this.metrics.cacheResult(model.name, source);
      const cached = source === 'coalesced';
      // Charged before answering, so a client that has its answer also sees it accounted.
      await usage.complete(cached ? NO_TOKENS : answer.result.usage, { cached, model: answer.model });
      await respond({
        id: state.id,
        model: answer.model,
        output: answer.result.output,
        finishReason: answer.result.finishReason,
        usage: cached ? NO_TOKENS : answer.result.usage,
        cached,
      });
    } catch (error) {
      if (clientSignal.aborted) {
        // Cut off by the client: charged for what it received; nothing received is free.
        if (stream && stream.delivered > 0) {
          const produced = joined
            ? NO_TOKENS
            : cutStreamUsage(promptText(params), stream.delivered, params.maxNewTokens);
          await usage.complete(produced, { cached: joined });
        }
        return;
      }
      await usage.release(); // a failed generation is free, also after some output
      setQuotaHeaders(); // an error answer not yet sent shows the unit given back
      const appError = toGenerationError(error, model.name);
      if (!stream?.started) throw appError;
      if (appError.code === 'internal_error') {
        this.logger.error({ request_id: req.ctx.requestId, err: error }, 'stream failed');
      }
      await stream.fail(appError, req.ctx.requestId);
    } finally {
      await usage.release(); // does nothing once the generation was charged
    }
  }

  /** The backend call a (possibly shared) generation makes, measured for the LLM metrics. */
  private backendCall(request: ResolvedRequest, streaming: boolean): FlightRunner {
    const { model, params } = request;
    return async (signal, emit): Promise<FlightResult> => {
      const call = this.metrics.startRequest(model.name, model.provider);
      try {
        if (!streaming) {
          const served = await this.generation.generate(model, params, signal);
          call.servedBy(served.model.name, served.candidate.provider.kind);
          call.finish('success', served.value.usage);
          return { model: served.model.name, result: served.value };
        }
        let output = '';
        let servedBy = model.name;
        let done: Extract<StreamChunk, { type: 'done' }> | null = null;
        for await (const { model: served, candidate, value: chunk } of this.generation.stream(model, params, signal)) {
          servedBy = served.name;
          call.servedBy(served.name, candidate.provider.kind);
          if (chunk.type === 'done') {
            done = chunk;
          } else {
            call.firstToken();
            output += chunk.text;
            emit(chunk.text, served.name);
          }
        }
        if (!done) throw new BackendResponseError('upstream stream ended without its final chunk');
        call.finish('success', done.usage);
        return { model: servedBy, result: { output, finishReason: done.finishReason, usage: done.usage } };
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
    };
  }
}
