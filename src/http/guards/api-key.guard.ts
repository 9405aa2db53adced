/**
 * Global guard: every route needs a client API key unless marked @Public(). The key comes in
 * `X-API-Key` or `Authorization: Bearer` (what OpenAI SDKs send). A key that does not
 * authenticate counts as a failure of its client address; past the limit it is answered 429
 * instead of 401, while valid keys from that address are still served (auth-failure-limiter.ts).
 */
import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AppError } from '../../contracts/app-error';
import { IS_PUBLIC } from './public.decorator';
import type { AppRequest } from '../core/app-request';
import { clientAddress } from '../core/listeners';
import { bearerToken } from '../../modules/auth/bearer-secret';
import { LLM, SPANS } from '../../infra/tracing/trace-attributes';
import { Tracing } from '../../infra/tracing/tracing';
import { ApiKeyService } from '../../modules/auth/api-key.service';
import { AuthFailureLimiter } from '../../modules/auth/auth-failure-limiter';

function presentedKey(req: AppRequest): string | null {
  const header = req.headers['x-api-key'];
  if (typeof header === 'string' && header.trim() !== '') return header.trim();
  return bearerToken(req.headers.authorization);
}

@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly apiKeys: ApiKeyService,
    private readonly failures: AuthFailureLimiter,
    private readonly tracing: Tracing,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const isPublic = this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()]);
    if (isPublic) return true;
    const req = context.switchToHttp().getRequest<AppRequest>();
    const plaintext = presentedKey(req);
    if (plaintext === null) {
      throw new AppError('missing_api_key', 'send your API key in X-API-Key or Authorization: Bearer');
    }
    const key = await this.tracing.span(SPANS.auth, {}, () => this.apiKeys.authenticate(plaintext));
    if (!key) {
      throw await this.failures.reject(
        'client-key',
        clientAddress(req),
        new AppError('invalid_api_key', 'the API key is unknown, revoked, inactive or expired'),
      );
    }
    req.ctx.apiKey = key;
    this.tracing.requestSpan().setAttributes({ [LLM.keyId]: key.id });
    return true;
  }
}
