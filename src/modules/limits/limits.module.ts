/**
 * Per-key rate limits (API.md "Rate limits") on @nestjs/throttler: requests per minute
 * (`rpm_limit`, else DEFAULT_RPM) and optional tokens per minute (`tpm_limit`: checked before a
 * request, charged after it by UsageAccounting), counted in RateLimitCounters. Also owns
 * LimitEvents.
 *
 * The limit belongs to the route, not to a spelling of its path: it applies to every request the
 * API key guard authenticated (every route that takes a client key), whatever URL reached it.
 * The guard itself is registered, in order, in app.module.ts.
 */
import { Global, Module } from '@nestjs/common';
import { ThrottlerModule } from '@nestjs/throttler';
import type { AppConfig } from '../../infra/config/app.config';
import { APP_CONFIG } from '../../infra/config/config.module';
import type { AppRequest } from '../../contracts/request-context';
import { LimitEvents } from './limit-events';
import { RateLimitCounters } from '../../stores/rate-limit/rate-limit-counters';
import { RATE_LIMIT_WINDOW_MS } from '../../stores/rate-limit/rate-limit-window';

@Global()
@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      inject: [APP_CONFIG, RateLimitCounters],
      useFactory: (config: AppConfig, counters: RateLimitCounters) => ({
        storage: counters,
        // Only requests authenticated with a client key are limited per key; failed
        // authentications have their own per-address limit (AuthFailureLimiter).
        skipIf: (context) => context.switchToHttp().getRequest<AppRequest>().ctx?.apiKey === undefined,
        getTracker: (req) => (req as AppRequest).ctx.apiKey!.id,
        throttlers: [
          {
            name: 'rpm',
            ttl: RATE_LIMIT_WINDOW_MS,
            limit: (context) =>
              context.switchToHttp().getRequest<AppRequest>().ctx.apiKey?.rpmLimit ?? config.defaultRpm,
          },
        ],
      }),
    }),
  ],
  providers: [LimitEvents],
  exports: [LimitEvents, ThrottlerModule],
})
export class RateLimitModule {}
