/**
 * GET /: a short pointer for whoever opens the server's address in a browser or with curl (API.md
 * is silent on `/`): where the API, the console, the health checks and the docs are. Public and
 * on every listener; it names paths, never hosts or settings.
 */
import { Controller, Get, Inject } from '@nestjs/common';
import { APP_CONFIG } from '../../infra/config/config.module';
import type { AppConfig } from '../../infra/config/app.config';
import { AnyListener } from '../guards/listener.guard';
import { Public } from '../guards/public.decorator';

export interface RootPointer {
  service: 'llm-server';
  message: string;
  api: string[];
  console: string;
  health: { live: string; ready: string };
  docs: string;
}

@Public()
@AnyListener()
@Controller()
export class RootController {
  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  @Get()
  root(): RootPointer {
    const consoleAt =
      this.config.adminPort === null ? '/admin/ui' : `/admin/ui on the admin port (${this.config.adminPort})`;
    return {
      service: 'llm-server',
      message:
        'An LLM gateway. Send requests with an API key (X-API-Key or Authorization: Bearer) to the routes under /v1; ' +
        'keys are issued by the admin API and the console.',
      api: ['/v1/generate', '/v1/chat/completions', '/v1/completions', '/v1/embeddings', '/v1/models'],
      console: consoleAt,
      health: { live: '/healthz', ready: '/readyz' },
      docs: 'README.md and docs/ in the server repository (docs/api-guide.md: every route)',
    };
  }
}
