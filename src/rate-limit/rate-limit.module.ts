/**
 * Per-key rate limits (API.md "Rate limits") on @nestjs/throttler: requests per minute
 * (`rpm_limit`, else DEFAULT_RPM) counted for every authenticated /v1/* request, and optional
 * tokens per minute (`tpm_limit`: checked before a request, charged after it by
 * UsageAccounting). Storage: RateLimitStore (Redis Lua or in-process). Also owns LimitEvents.
 *
 * Import this module AFTER AuthModule: global guards run in registration order, and this
 * guard needs the key the API key guard attaches.
 */
import { Global, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import type { AppConfig } from '../config/app.config';
import { APP_CONFIG } from '../config/config.module';
import type { AppRequest } from '../common/request-context';
import { LimitEvents } from './limit-events';
import { RATE_LIMIT_WINDOW_MS } from './rate-limit-window';
import { RateLimitGuard } from './rate-limit.guard';
import { RateLimitStore } from './rate-limit.store';

function isAuthenticatedV1(req: AppRequest): boolean {
  return req.ctx?.apiKey !== undefined && (req.path === '/v1' || req.path.startsWith('/v1/'));
}

@Global()
@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      inject: [APP_CONFIG, RateLimitStore],
      useFactory: (config: AppConfig, store: RateLimitStore) => ({
        storage: store,
        // Only authenticated client traffic is limited per key; failed authentications have
        // their own per-address limit (AuthFailureLimiter).
        skipIf: (context) => !isAuthenticatedV1(context.switchToHttp().getRequest<AppRequest>()),
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
  providers: [RateLimitStore, LimitEvents, { provide: APP_GUARD, useClass: RateLimitGuard }],
  exports: [RateLimitStore, LimitEvents],
})
export class RateLimitModule {}
