/**
 * One generation request from HTTP in to HTTP out: resolve, account, call the backend, write
 * JSON or SSE, and abort the backend call the moment the client disconnects.
 *
 * Order of checks (API.md): authentication (401, ApiKeyGuard) → rate limit (429,
 * RateLimitGuard) → request validation (400, pipe + resolve) → model (404/403, resolve) →
 * quota (402, usage.begin) → cache → backend.
 *
 * What a generation costs (UsageAccounting): one request unit, reserved before the backend is
 * called; the real tokens once it is done. Given back (free) when the backend fails (5xx,
 * timeout, unreachable, also mid-stream), when the client leaves before any output, or on any
 * other error. A stream the client cuts after some output is charged for what was produced
 * (usage-estimate.ts).
 */
import { Inject, Injectable } from '@nestjs/common';
import type { Response } from 'express';
import { errorBody } from '../common/error-body';
import type { AppRequest } from '../common/request-context';
import { APP_LOGGER, type AppLogger } from '../logging/logger';
import { type GenerationUsage, UsageAccounting } from '../usage/usage-accounting';
import { cutStreamUsage } from '../usage/usage-estimate';
import type { GenerateRequestDto } from './dto/generate.dto';
import { generateResponse, generationId } from './dto/generate-response';
import { ClientDisconnected, toGenerationError } from './generation.errors';
import { GenerationService, type ResolvedRequest } from './generation.service';
import { SseWriter } from './sse-writer';

/** An AbortSignal that fires when the client closes the connection before the response ends. */
function disconnectSignal(res: Response): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort(new ClientDisconnected());
  });
  return controller.signal;
}

@Injectable()
export class GenerationHandler {
  constructor(
    private readonly generation: GenerationService,
    private readonly accounting: UsageAccounting,
    @Inject(APP_LOGGER) private readonly logger: AppLogger,
  ) {}

  async handle(dto: GenerateRequestDto, req: AppRequest, res: Response): Promise<void> {
    const key = req.ctx.apiKey!;
    const clientSignal = disconnectSignal(res);
    const request = this.generation.resolve(dto, key);
    const usage = await this.accounting.begin(key, request.model.name);
    const setQuotaHeaders = () => {
      if (!res.headersSent) for (const [name, value] of Object.entries(usage.headers)) res.setHeader(name, value);
    };
    try {
      setQuotaHeaders();
      // Completion cache: look up here. A hit answers with `cached: true` and is settled with
      // `usage.complete({ promptTokens: 0, completionTokens: 0 }, { cached: true })`.
      if (request.stream) await this.stream(request, req, res, clientSignal, usage);
      else await this.complete(request, res, clientSignal, usage);
    } finally {
      await usage.release(); // does nothing once the generation was charged
      setQuotaHeaders(); // an error answer not yet sent shows the unit given back
    }
  }

  private async complete(
    request: ResolvedRequest,
    res: Response,
    clientSignal: AbortSignal,
    usage: GenerationUsage,
  ): Promise<void> {
    try {
      const served = await this.generation.generate(request.model, request.params, clientSignal);
      // Charged before answering, so a client that has its answer also sees it accounted.
      await usage.complete(served.value.usage, { model: served.model.name });
      res.status(200).json(generateResponse(generationId(), served.model.name, served.value, false));
    } catch (error) {
      if (clientSignal.aborted) return; // nobody to answer
      throw toGenerationError(error, request.model.name);
    }
  }

  private async stream(
    request: ResolvedRequest,
    req: AppRequest,
    res: Response,
    clientSignal: AbortSignal,
    usage: GenerationUsage,
  ): Promise<void> {
    const id = generationId();
    const sse = new SseWriter(res);
    let output = '';
    let deltas = 0;
    let servedBy = request.model.name;
    try {
      for await (const { model, value: chunk } of this.generation.stream(request.model, request.params, clientSignal)) {
        servedBy = model.name;
        if (chunk.type === 'delta') {
          if (chunk.text !== '') deltas += 1;
          output += chunk.text;
          await sse.event({ id, model: model.name, delta: chunk.text });
        } else {
          await usage.complete(chunk.usage, { model: model.name });
          const body = generateResponse(
            id,
            model.name,
            { output, finishReason: chunk.finishReason, usage: chunk.usage },
            false,
          );
          await sse.event({ ...body, done: true });
        }
      }
      await sse.done();
    } catch (error) {
      if (clientSignal.aborted) {
        // Cut off by the client: charged for what was produced; nothing produced is free.
        if (deltas > 0) {
          await usage.complete(cutStreamUsage(request.params.prompt, deltas, request.params.maxNewTokens), {
            model: servedBy,
          });
        }
        return;
      }
      await usage.release(); // a failed generation is free, also after some output
      const appError = toGenerationError(error, request.model.name);
      if (!sse.hasStarted) throw appError;
      if (appError.code === 'internal_error') {
        this.logger.error({ request_id: req.ctx.requestId, err: error }, 'stream failed');
      }
      await sse.event(errorBody(appError.code, appError.message, req.ctx.requestId));
      await sse.done();
    }
  }
}
