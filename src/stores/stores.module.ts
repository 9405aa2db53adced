/**
 * The one place that decides where shared state lives. Each store is a port with an in-process
 * and a Redis implementation; with REDIS_URL the Redis ones are wired, each wrapped once in the
 * Redis-down policy (infra/redis/redis-fallback.ts): while Redis is down, the in-process one
 * answers (the cache is skipped). No other class holds a Redis client and decides its own
 * fallback. Not global: the features that keep shared state import it.
 */
import { Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { Clock } from '../contracts/clock';
import type { AppConfig } from '../infra/config/app.config';
import { APP_CONFIG } from '../infra/config/config.module';
import { APP_LOGGER, type AppLogger } from '../infra/logging/logger';
import { withRedisFallback } from '../infra/redis/redis-fallback';
import { REDIS_CONNECTION, type RedisConnection } from '../infra/redis/redis.module';
import { CacheStore } from './cache/cache-store';
import { MemoryCacheStore } from './cache/memory-cache-store';
import { NoCacheStore } from './cache/no-cache-store';
import { RedisCacheStore } from './cache/redis-cache-store';
import { ConcurrencyLeases } from './concurrency/concurrency-leases';
import { MemoryConcurrencyLeases } from './concurrency/memory-concurrency-leases';
import { RedisConcurrencyLeases } from './concurrency/redis-concurrency-leases';
import { MemoryRateLimitCounters } from './rate-limit/memory-rate-limit-counters';
import { RateLimitCounters } from './rate-limit/rate-limit-counters';
import { RedisRateLimitCounters } from './rate-limit/redis-rate-limit-counters';
import { RedisReplicaBus } from './replica-bus/redis-replica-bus';
import { LocalReplicaBus, ReplicaBus } from './replica-bus/replica-bus';

/** The rate-limit counters: in Redis (in-process while it is down) when configured, else in-process. */
export function rateLimitCounters(redis: RedisConnection | null, clock: Clock): RateLimitCounters {
  const local = new MemoryRateLimitCounters(clock);
  if (!redis) return local;
  return withRedisFallback<RateLimitCounters>(redis, new RedisRateLimitCounters(redis, clock), local, [
    'hit',
    'chargeTokens',
  ]);
}

/** The completion cache: shared in Redis (skipped while it is down) when configured, else an in-process LRU. */
export function cacheStore(redis: RedisConnection | null, maxEntries: number): CacheStore {
  if (!redis) return new MemoryCacheStore(maxEntries);
  return withRedisFallback<CacheStore>(redis, new RedisCacheStore(redis), new NoCacheStore(), [
    'get',
    'lookupOrClaim',
    'storeAndRelease',
    'renewClaim',
    'isClaimed',
  ]);
}

/** Concurrency leases: in Redis (in-process while it is down) when configured, else in-process. */
export function concurrencyLeases(redis: RedisConnection | null, leaseTtlMs?: number): ConcurrencyLeases {
  const local = new MemoryConcurrencyLeases();
  if (!redis) return local;
  return withRedisFallback<ConcurrencyLeases>(redis, new RedisConcurrencyLeases(redis, leaseTtlMs), local, [
    'acquire',
    'inFlight',
  ]);
}

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

@Module({
  providers: [
    { provide: RateLimitCounters, inject: [REDIS_CONNECTION, Clock], useFactory: rateLimitCounters },
    {
      provide: CacheStore,
      inject: [REDIS_CONNECTION, APP_CONFIG],
      useFactory: (redis: RedisConnection | null, config: AppConfig) => cacheStore(redis, config.cacheMaxEntries),
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
      useFactory: (redis: RedisConnection | null) => concurrencyLeases(redis),
    },
    StoresLifecycle,
  ],
  exports: [RateLimitCounters, CacheStore, ReplicaBus, ConcurrencyLeases],
})
export class StoresModule {}
