/**
 * One generation request from HTTP in to HTTP out: resolve, call the backend, write JSON or
 * SSE, and abort the backend call the moment the client disconnects.
 */
import { Inject, Injectable } from '@nestjs/common';
import type { Response } from 'express';
import { errorBody } from '../common/error-body';
import type { AppRequest } from '../common/request-context';
import { APP_LOGGER, type AppLogger } from '../logging/logger';
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
    @Inject(APP_LOGGER) private readonly logger: AppLogger,
  ) {}

  async handle(dto: GenerateRequestDto, req: AppRequest, res: Response): Promise<void> {
    const request = this.generation.resolve(dto, req.ctx.apiKey!);
    const clientSignal = disconnectSignal(res);
    if (request.stream) await this.stream(request, req, res, clientSignal);
    else await this.complete(request, res, clientSignal);
  }

  private async complete(request: ResolvedRequest, res: Response, clientSignal: AbortSignal): Promise<void> {
    try {
      const served = await this.generation.generate(request.model, request.params, clientSignal);
      res.status(200).json(generateResponse(generationId(), served.model.name, served.value, false));
    } catch (error) {
      if (clientSignal.aborted) return; // nobody to answer
      throw toGenerationError(error, request.model.name);
    }
  }

  private async stream(request: ResolvedRequest, req: AppRequest, res: Response, clientSignal: AbortSignal): Promise<void> {
    const id = generationId();
    const sse = new SseWriter(res);
    let output = '';
    try {
      for await (const { model, value: chunk } of this.generation.stream(request.model, request.params, clientSignal)) {
        if (chunk.type === 'delta') {
          output += chunk.text;
          await sse.event({ id, model: model.name, delta: chunk.text });
        } else {
          const body = generateResponse(id, model.name, { output, finishReason: chunk.finishReason, usage: chunk.usage }, false);
          await sse.event({ ...body, done: true });
        }
      }
      await sse.done();
    } catch (error) {
      if (clientSignal.aborted) return;
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
