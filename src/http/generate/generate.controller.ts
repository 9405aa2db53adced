/** POST /v1/generate: JSON, or SSE when `stream: true`. */
import { Body, Controller, HttpCode, Post, Req, Res } from '@nestjs/common';
import type { Response } from 'express';
import type { AppRequest } from '../core/app-request';
import { GENERATE_FORMAT } from './generate-format';
import { GenerateRequestDto } from './generate.dto';
import { samplingInput } from './sampling-fields.dto';
import { GenerationResponder } from '../responses/generation-responder';
import { RequestResolver } from '../../modules/generation/request-resolver';

@Controller('v1')
export class GenerationController {
  constructor(
    private readonly resolver: RequestResolver,
    private readonly responder: GenerationResponder,
  ) {}

  @Post('generate')
  @HttpCode(200)
  generate(@Body() dto: GenerateRequestDto, @Req() req: AppRequest, @Res() res: Response): Promise<void> {
    const input = { ...samplingInput(dto), prompt: dto.prompt, maxNewTokens: dto.max_new_tokens };
    const request = this.resolver.resolve(input, req.ctx.apiKey!);
    return this.responder.serve(request, GENERATE_FORMAT, req, res);
  }
}
