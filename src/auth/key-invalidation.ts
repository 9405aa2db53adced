/**
 * Tells every replica that a key changed. Locally the cache entry is dropped at once; other
 * replicas hear it over Redis pub/sub within milliseconds. A replica whose subscription
 * (re)connects clears its whole cache, since it may have missed announcements meanwhile.
 */
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type Redis from 'ioredis';
import { REDIS } from '../redis/redis.module';
import { APP_LOGGER, type AppLogger } from '../logging/logger';
import { KeyCache } from './key-cache';
import type { AppConfig } from '../config/app.config';
import { APP_CONFIG } from '../config/config.module';

@Injectable()
export class KeyInvalidation implements OnModuleInit, OnApplicationShutdown {
  private subscriber: Redis | null = null;
  private readonly channel: string;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly cache: KeyCache,
    @Inject(REDIS) private readonly redis: Redis | null,
    @Inject(APP_LOGGER) private readonly logger: AppLogger,
  ) {
    this.channel = `${config.redisPrefix}api-key-changed`;
  }

  onModuleInit(): void {
    if (!this.redis) return;
    const subscriber = this.redis.duplicate();
    this.subscriber = subscriber;
    subscriber.on('error', () => undefined); // the main connection already logs Redis errors
    subscriber.on('ready', () => this.cache.clear());
    subscriber.on('message', (_channel: string, id: string) => this.cache.invalidate(id));
    subscriber.subscribe(this.channel).catch((error: Error) => {
      this.logger.warn({ err: error.message }, 'key invalidation: subscribe failed; ioredis retries on reconnect');
    });
  }

  async announce(id: string): Promise<void> {
    this.cache.invalidate(id);
    if (!this.redis) return;
    try {
      await this.redis.publish(this.channel, id);
    } catch (error) {
      // Other replicas then converge only when their cache entry expires (KeyCache ttl, 60 s
      // with Redis): logged so an operator knows; Redis being down also fails readiness.
      this.logger.warn({ err: (error as Error).message, key_id: id }, 'key invalidation: publish failed');
    }
  }

  onApplicationShutdown(): void {
    this.subscriber?.disconnect();
  }
}
