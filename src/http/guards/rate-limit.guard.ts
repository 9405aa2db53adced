/**
 * The per-key rate limit (API.md "Rate limits"), a ThrottlerGuard registered globally after the
 * API key guard (so it sees the authenticated key) and before pipes (so 429 comes before request
 * validation). Every request authenticated with a client key counts, whatever URL reached its
 * route. The window's figures go on the request's context here, before anything else can fail,
 * so the X-RateLimit-* headers are on every such answer: success, 429, and the 400/402/404/5xx
 * errors raised later. The decision itself is the limits module's (RateLimits).
 */
import { Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  InjectThrottlerOptions,
  InjectThrottlerStorage,
  ThrottlerGuard,
  ThrottlerModule,
  type ThrottlerModuleOptions,
  type ThrottlerRequest,
  type ThrottlerStorage,
} from '@nestjs/throttler';
import type { AppConfig } from '../../infra/config/app.config';
import { APP_CONFIG } from '../../infra/config/config.module';
import { RateLimits } from '../../modules/limits/rate-limits';
import { LimitsModule } from '../../modules/limits/limits.module';
import { RateLimitCounters } from '../../stores/rate-limit/rate-limit-counters';
import { RATE_LIMIT_WINDOW_MS } from '../../stores/rate-limit/rate-limit-window';
import type { AppRequest } from '../core/app-request';

/**
 * @nestjs/throttler wired to our counters: only requests authenticated with a client key are
 * limited per key (failed authentications have their own per-address limit), the tracker is the
 * key's id and the limit its rpm (else DEFAULT_RPM).
 */
export function throttlerModule() {
  return ThrottlerModule.forRootAsync({
    imports: [LimitsModule],
    inject: [APP_CONFIG, RateLimitCounters],
    useFactory: (config: AppConfig, counters: RateLimitCounters) => ({
      storage: counters,
      skipIf: (context) => context.switchToHttp().getRequest<AppRequest>().ctx?.apiKey === undefined,
      getTracker: (req) => (req as AppRequest).ctx.apiKey!.id,
      throttlers: [
        {
          name: 'rpm',
          ttl: RATE_LIMIT_WINDOW_MS,
          limit: (context) => context.switchToHttp().getRequest<AppRequest>().ctx.apiKey?.rpmLimit ?? config.defaultRpm,
        },
      ],
    }),
  });
}

@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() storage: ThrottlerStorage,
    reflector: Reflector,
    private readonly rateLimits: RateLimits,
  ) {
    super(options, storage, reflector);
  }

  /** One atomic hit per request; the limit (rpm) and tracker (key id) come from the throttler options. */
  protected override async handleRequest({ context, limit, ttl }: ThrottlerRequest): Promise<boolean> {
    const req = context.switchToHttp().getRequest<AppRequest>();
    await this.rateLimits.check(req.ctx, limit, ttl);
    return true;
  }
}
