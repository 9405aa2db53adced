/** POST /v1/generate: JSON, or SSE when `stream: true`. The upstream call is aborted when the client leaves. */
import { Body, Controller, HttpCode, Post, Req, Res } from '@nestjs/common';
import type { Response } from 'express';
import type { AppRequest } from '../common/request-context';
import { GenerateRequestDto } from './dto/generate.dto';
import { GenerationHandler } from './generation.handler';

@Controller('v1')
export class GenerationController {
  constructor(private readonly handler: GenerationHandler) {}

  @Post('generate')
  @HttpCode(200)
  generate(@Body() dto: GenerateRequestDto, @Req() req: AppRequest, @Res() res: Response): Promise<void> {
    return this.handler.handle(dto, req, res);
  }
}
