/** POST /v1/generate: JSON, or SSE when `stream: true`. */
import { Body, Controller, HttpCode, Post, Req, Res } from '@nestjs/common';
import type { Response } from 'express';
import type { AppRequest } from '../../contracts/request-context';
import { GENERATE_FORMAT } from '../responses/answer-format';
import { GenerateRequestDto } from './generate.dto';
import { samplingInput } from './sampling-fields.dto';
import { GenerationPipeline } from '../../modules/pipeline/generation-pipeline';
import { GenerationService } from '../../modules/generation/generation.service';

@Controller('v1')
export class GenerationController {
  constructor(
    private readonly generation: GenerationService,
    private readonly pipeline: GenerationPipeline,
  ) {}

  @Post('generate')
  @HttpCode(200)
  generate(@Body() dto: GenerateRequestDto, @Req() req: AppRequest, @Res() res: Response): Promise<void> {
    const input = { ...samplingInput(dto), prompt: dto.prompt, maxNewTokens: dto.max_new_tokens };
    const request = this.generation.resolve(input, req.ctx.apiKey!);
    return this.pipeline.run(request, GENERATE_FORMAT, req, res);
  }
}
