/** API keys: storage, lookup cache, cross-replica invalidation and the global key guard. */
import { Global, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import type Redis from 'ioredis';
import { REDIS } from '../redis/redis.module';
import { ApiKeyGuard } from './api-key.guard';
import { ApiKeyService } from './api-key.service';
import { AuthFailureLimiter } from './auth-failure-limiter';
import { ApiKeyEntity } from './entities/api-key.entity';
import { KeyCache } from './key-cache';
import { KeyInvalidation } from './key-invalidation';

/** Without pub/sub, a bounded entry lifetime is what keeps replicas within 5 s of a change. */
const CACHE_TTL_WITH_PUBSUB_MS = 60_000;
const CACHE_TTL_WITHOUT_PUBSUB_MS = 5_000;

@Global()
@Module({
  imports: [TypeOrmModule.forFeature([ApiKeyEntity])],
  providers: [
    {
      provide: KeyCache,
      inject: [REDIS],
      useFactory: (redis: Redis | null) => new KeyCache(redis ? CACHE_TTL_WITH_PUBSUB_MS : CACHE_TTL_WITHOUT_PUBSUB_MS),
    },
    ApiKeyService,
    KeyInvalidation,
    AuthFailureLimiter,
    { provide: APP_GUARD, useClass: ApiKeyGuard },
  ],
  exports: [ApiKeyService, KeyInvalidation, AuthFailureLimiter, TypeOrmModule],
})
export class AuthModule {}
