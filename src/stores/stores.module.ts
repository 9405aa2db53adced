/**
 * The one place that decides where shared state lives. Each store is a port with an in-process
 * and a Redis implementation; with REDIS_URL the Redis ones are wired, and they share the one
 * Redis health monitor (src/redis), which makes them fall back to in-process behaviour while
 * Redis is down. No other class holds a Redis client and decides its own fallback.
 */
import { Global, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { CacheStore, MemoryCacheStore } from './cache/cache-store';
import { RedisCacheStore } from './cache/redis-cache-store';
import { Clock } from '../contracts/clock';
import type { AppConfig } from '../infra/config/app.config';
import { APP_CONFIG } from '../infra/config/config.module';
import { APP_LOGGER, type AppLogger } from '../infra/logging/logger';
import { MemoryRateLimitCounters, RateLimitCounters, RedisRateLimitCounters } from './rate-limit/rate-limit-counters';
import { REDIS_CONNECTION, type RedisConnection } from '../infra/redis/redis.module';
import { ConcurrencyLeases, MemoryConcurrencyLeases } from './concurrency/concurrency-leases';
import { RedisConcurrencyLeases } from './concurrency/redis-concurrency-leases';
import { RedisReplicaBus } from './replica-bus/redis-replica-bus';
import { LocalReplicaBus, ReplicaBus } from './replica-bus/replica-bus';

@Injectable()
class StoresLifecycle implements OnApplicationShutdown {
  constructor(
    private readonly bus: ReplicaBus,
    private readonly leases: ConcurrencyLeases,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.bus.close();
    await this.leases.close();
  }
}

@Global()
@Module({
  providers: [
    {
      provide: RateLimitCounters,
      inject: [REDIS_CONNECTION, Clock],
      useFactory: (redis: RedisConnection | null, clock: Clock): RateLimitCounters => {
        const local = new MemoryRateLimitCounters(clock);
        return redis ? new RedisRateLimitCounters(redis, clock, local) : local;
      },
    },
    {
      provide: CacheStore,
      inject: [REDIS_CONNECTION, APP_CONFIG],
      useFactory: (redis: RedisConnection | null, config: AppConfig): CacheStore =>
        redis ? new RedisCacheStore(redis) : new MemoryCacheStore(config.cacheMaxEntries),
    },
    {
      provide: ReplicaBus,
      inject: [REDIS_CONNECTION, APP_LOGGER],
      useFactory: (redis: RedisConnection | null, logger: AppLogger): ReplicaBus =>
        redis
          ? new RedisReplicaBus(redis, (error) =>
              logger.warn({ err: error.message }, 'replica bus: subscribe failed; retried on the next connection'),
            )
          : new LocalReplicaBus(),
    },
    {
      provide: ConcurrencyLeases,
      inject: [REDIS_CONNECTION],
      useFactory: (redis: RedisConnection | null): ConcurrencyLeases => {
        const local = new MemoryConcurrencyLeases();
        return redis ? new RedisConcurrencyLeases(redis, local) : local;
      },
    },
    StoresLifecycle,
  ],
  exports: [RateLimitCounters, CacheStore, ReplicaBus, ConcurrencyLeases],
})
export class StoresModule {}
