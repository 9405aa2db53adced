/** API keys: lookup (with its cache), cross-replica invalidation, failed-auth limiting and the global key guard. */
import { Global, Module } from '@nestjs/common';
import { ApiKeyService } from './api-key.service';
import { AuthFailureLimiter } from './auth-failure-limiter';
import { KeyCache } from './key-cache';
import { KeyInvalidation } from './key-invalidation';

@Global()
@Module({
  providers: [
    { provide: KeyCache, useFactory: () => new KeyCache() },
    ApiKeyService,
    KeyInvalidation,
    AuthFailureLimiter,
  ],
  exports: [ApiKeyService, KeyInvalidation, AuthFailureLimiter],
})
export class AuthModule {}
