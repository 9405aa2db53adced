/**
 * GET /v1/models: the models this key may use, in the OpenAI list format, each with our additive
 * `kind` (`chat` or `embedding`: which routes it serves).
 */
import { Controller, Get, Inject, Req } from '@nestjs/common';
import type { AppRequest } from '../core/app-request';
import type { AppConfig } from '../../infra/config/app.config';
import { APP_CONFIG } from '../../infra/config/config.module';

/** A fixed "created" stamp: models come from config, which has no creation time of its own. */
const STARTED_AT = Math.floor(Date.now() / 1000);

@Controller('v1/models')
export class ModelsController {
  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  @Get()
  list(@Req() req: AppRequest) {
    const allowed = req.ctx.apiKey?.models ?? null;
    const models = this.config.models.models.filter((model) => allowed === null || allowed.includes(model.name));
    return {
      object: 'list',
      data: models.map((model) => ({
        id: model.name,
        object: 'model',
        created: STARTED_AT,
        owned_by: 'llm-server',
        kind: model.kind,
      })),
    };
  }
}
