/**
 * The shared Redis connection when REDIS_URL is set, else null: every consumer has an
 * in-process fallback. Commands fail fast instead of queueing forever when Redis is down,
 * so a broken Redis shows up as errors and a failing readiness check, not as hung requests.
 */
import { Global, Inject, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import Redis from 'ioredis';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app.config';
import { APP_LOGGER, type AppLogger } from '../logging/logger';

export const REDIS = Symbol('REDIS');

export function createRedis(url: string): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: 2000,
    // Keep reconnecting (capped back-off) so the server recovers when Redis comes back.
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
  });
}

@Injectable()
export class RedisLifecycle implements OnApplicationShutdown {
  constructor(@Inject(REDIS) private readonly redis: Redis | null) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.redis) this.redis.disconnect();
  }
}

@Global()
@Module({
  providers: [
    {
      provide: REDIS,
      inject: [APP_CONFIG, APP_LOGGER],
      useFactory: (config: AppConfig, logger: AppLogger): Redis | null => {
        if (!config.redisUrl) {
          logger.warn(
            'REDIS_URL is not set: rate limits, cache and key invalidation are in-process (one replica only)',
          );
          return null;
        }
        const redis = createRedis(config.redisUrl);
        // Without a listener ioredis reports connection errors as unhandled. It retries every
        // couple of seconds while Redis is down: log at most one line per 30 s.
        let lastLoggedAt = 0;
        redis.on('error', (error: Error) => {
          if (Date.now() - lastLoggedAt < 30_000) return;
          lastLoggedAt = Date.now();
          logger.warn({ err: error.message }, 'redis connection error (repeats are not logged for 30 s)');
        });
        return redis;
      },
    },
    RedisLifecycle,
  ],
  exports: [REDIS],
})
export class RedisModule {}
