/**
 * Runs a resolved generation request through the pipeline and writes its answer on the Express
 * response: as JSON, or as SSE in the request's API shape (AnswerFormat). The client's
 * disconnect becomes the signal that aborts the request's part in its generation.
 */
import { Inject, Injectable } from '@nestjs/common';
import type { Response } from 'express';
import { ClientDisconnected } from '../../contracts/generation';
import type { AppConfig } from '../../infra/config/app.config';
import { APP_CONFIG } from '../../infra/config/config.module';
import type { ResolvedRequest } from '../../modules/generation/request-resolver';
import { GenerationPipeline } from '../../modules/pipeline/generation-pipeline';
import type { AppRequest } from '../core/app-request';
import type { AnswerFormat, StreamState } from './answer-format';
import { JsonResponse } from './json-response';
import type { SseTimings } from './sse-writer';
import { StreamResponse } from './stream-response';

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
export class GenerationResponder {
  private readonly sseTimings: SseTimings;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly pipeline: GenerationPipeline,
  ) {
    this.sseTimings = { stallTimeoutMs: config.sseStallTimeoutMs, heartbeatMs: config.sseHeartbeatMs };
  }

  serve(request: ResolvedRequest, format: AnswerFormat, req: AppRequest, res: Response): Promise<void> {
    const state: StreamState = { id: format.newId(), created: Math.floor(Date.now() / 1000), first: true };
    const sink = request.stream
      ? new StreamResponse(res, format, state, this.sseTimings, req.ctx.requestId)
      : new JsonResponse(res, format, state);
    return this.pipeline.run(request, req.ctx, sink, disconnectSignal(res), req.headers['cache-control']);
  }
}
