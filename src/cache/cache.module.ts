/** The completion cache: Redis when configured (shared by replicas), else a bounded in-process LRU. */
import { Global, Module } from '@nestjs/common';
import type Redis from 'ioredis';
import type { AppConfig } from '../config/app.config';
import { APP_CONFIG } from '../config/config.module';
import { REDIS } from '../redis/redis.module';
import { CacheStore, MemoryCacheStore, RedisCacheStore } from './cache-store';
import { CompletionCache } from './completion-cache.service';

@Global()
@Module({
  providers: [
    {
      provide: CacheStore,
      inject: [APP_CONFIG, REDIS],
      useFactory: (config: AppConfig, redis: Redis | null): CacheStore =>
        redis ? new RedisCacheStore(redis, config.redisPrefix) : new MemoryCacheStore(config.cacheMaxEntries),
    },
    CompletionCache,
  ],
  exports: [CompletionCache, CacheStore],
})
export class CacheModule {}
