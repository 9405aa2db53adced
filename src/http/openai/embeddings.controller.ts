/**
 * POST /v1/embeddings (OpenAI-compatible), served by the generation pipeline: keys, RPM, TPM
 * (input tokens), quotas (one unit per call), the cache and coalescing, metrics and the usage
 * ledger apply exactly as to a generation. Only models of kind `embedding` embed.
 */
import { Body, Controller, HttpCode, Post, Req, Res } from '@nestjs/common';
import type { Response } from 'express';
import type { AppRequest } from '../core/app-request';
import { GenerationResponder } from '../responses/generation-responder';
import { RequestResolver } from '../../modules/generation/request-resolver';
import { embeddingInputs, EmbeddingsRequestDto } from './dto/embeddings-request.dto';
import { embeddingAnswerFormat } from './embedding-format';

@Controller('v1')
export class EmbeddingsController {
  constructor(
    private readonly resolver: RequestResolver,
    private readonly responder: GenerationResponder,
  ) {}

  @Post('embeddings')
  @HttpCode(200)
  embeddings(@Body() dto: EmbeddingsRequestDto, @Req() req: AppRequest, @Res() res: Response): Promise<void> {
    const input = { model: dto.model, input: embeddingInputs(dto.input), dimensions: dto.dimensions };
    const request = this.resolver.resolveEmbedding(input, req.ctx.apiKey!);
    return this.responder.serve(request, embeddingAnswerFormat(dto.encoding_format ?? 'float'), req, res);
  }
}
