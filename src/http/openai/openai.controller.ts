/**
 * The OpenAI-compatible API: POST /v1/completions and POST /v1/chat/completions, served by the
 * same pipeline as /v1/generate (keys, limits, quotas, cache, coalescing, metrics, abort).
 * GET /v1/models lives in src/models.
 */
import { Body, Controller, HttpCode, Post, Req, Res } from '@nestjs/common';
import type { Response } from 'express';
import type { AppRequest } from '../core/app-request';
import { GenerationResponder } from '../responses/generation-responder';
import { RequestResolver } from '../../modules/generation/request-resolver';
import { ChatRequestDto } from './dto/chat-request.dto';
import { CompletionRequestDto } from './dto/completion-request.dto';
import { openAiAnswerFormat } from './openai-answer-format';
import { chatInput, COMPLETION_FIELDS, completionInput } from './openai-input';

@Controller('v1')
export class OpenAiController {
  constructor(
    private readonly resolver: RequestResolver,
    private readonly responder: GenerationResponder,
  ) {}

  @Post('completions')
  @HttpCode(200)
  completions(@Body() dto: CompletionRequestDto, @Req() req: AppRequest, @Res() res: Response): Promise<void> {
    const request = this.resolver.resolve(completionInput(dto), req.ctx.apiKey!, COMPLETION_FIELDS);
    const format = openAiAnswerFormat('completion', dto.stream_options?.include_usage === true);
    return this.responder.serve(request, format, req, res);
  }

  @Post('chat/completions')
  @HttpCode(200)
  chat(@Body() dto: ChatRequestDto, @Req() req: AppRequest, @Res() res: Response): Promise<void> {
    const { input, fields } = chatInput(dto);
    const request = this.resolver.resolve(input, req.ctx.apiKey!, fields);
    const format = openAiAnswerFormat('chat', dto.stream_options?.include_usage === true);
    return this.responder.serve(request, format, req, res);
  }
}
