/**
 * API keys (API.md "Authentication"): lookup with its cache, cross-replica invalidation, and the
 * per-address limit on failed authentications. The guards that call them are the HTTP layer's.
 */
import { Module } from '@nestjs/common';
import { LimitsModule } from '../limits/limits.module';
import { ApiKeyService } from './api-key.service';
import { AuthFailureLimiter } from './auth-failure-limiter';
import { KeyCache } from './key-cache';
import { KeyInvalidation } from './key-invalidation';

@Module({
  imports: [LimitsModule],
  providers: [
    { provide: KeyCache, useFactory: () => new KeyCache() },
    ApiKeyService,
    KeyInvalidation,
    AuthFailureLimiter,
  ],
  exports: [ApiKeyService, KeyInvalidation, AuthFailureLimiter],
})
export class AuthModule {}
