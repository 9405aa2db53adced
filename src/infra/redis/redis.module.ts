/**
 * The shared Redis connection when REDIS_URL is set (else null: the stores module then wires the
 * in-process stores), and the one monitor of its health.
 *
 * No call on the request path waits on Redis for longer than REDIS_TIMEOUT_MS: there is no
 * offline queue (a command while disconnected fails at once) and every command has that
 * timeout. The first failure marks Redis down; from then on the stores skip it (their in-process
 * fallbacks answer) until a background PING answers again. A connection that stays hung while
 * ioredis believes it is open is replaced after a few unanswered probes.
 */
import { Global, Inject, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import Redis, { ReplyError } from 'ioredis';
import { DependencyHealth, type FailureKind } from '../lifecycle/dependency-health';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app.config';
import { APP_LOGGER, type AppLogger } from '../logging/logger';

/** Probes while down; after this many unanswered ones on an "open" connection it is replaced. */
const PROBE_INTERVAL_MS = 500;
const PROBES_BEFORE_RECONNECT = 4;

export function createRedis(url: string, timeoutMs: number): Redis {
  return new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: timeoutMs,
    connectTimeout: Math.max(1000, timeoutMs * 4),
    // Keep reconnecting (capped back-off) so the server recovers when Redis comes back.
    retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
  });
}

/**
 * A Redis reply error (wrong type, NOSCRIPT, script error) proves Redis answers; anything else is
 * an outage, a timeout included: no request waits on Redis past REDIS_TIMEOUT_MS more than once.
 */
export function classifyRedisFailure(error: unknown): FailureKind {
  return error instanceof ReplyError ? 'answer' : 'outage';
}

/** The client, its health and the key namespace: what every Redis-backed store needs. */
export class RedisConnection {
  private unansweredProbes = 0;
  readonly health: DependencyHealth;

  constructor(
    readonly client: Redis,
    readonly prefix: string,
    logger: AppLogger,
  ) {
    this.health = new DependencyHealth('redis', {
      probe: () => this.probe(),
      classify: classifyRedisFailure,
      probeIntervalMs: PROBE_INTERVAL_MS,
      onChange: (up, cause) => {
        if (up) logger.info('redis is back: shared limits, cache and coalescing resume');
        else
          logger.warn(
            { err: (cause as Error)?.message },
            'redis is unavailable: limits per replica, no shared cache or coalescing until it answers',
          );
      },
    });
  }

  private async probe(): Promise<void> {
    try {
      await this.client.ping();
      this.unansweredProbes = 0;
    } catch (error) {
      if (this.client.status === 'ready' && ++this.unansweredProbes >= PROBES_BEFORE_RECONNECT) {
        this.unansweredProbes = 0;
        this.client.disconnect(true); // a hung socket: open a new one
      }
      throw error;
    }
  }
}

export const REDIS_CONNECTION = Symbol('REDIS_CONNECTION');

/**
 * Connects and waits (bounded) for the first connection; a Redis that does not answer by then is
 * marked down, and the server starts degraded (the health probe connects it later).
 */
export async function connectRedis(
  url: string,
  timeoutMs: number,
  prefix: string,
  logger: AppLogger,
): Promise<RedisConnection> {
  const client = createRedis(url, timeoutMs);
  const connection = new RedisConnection(client, prefix, logger);
  // Without a listener ioredis reports connection errors as unhandled. It retries while
  // Redis is down: log at most one line per 30 s. Any error also tells the health monitor.
  let lastLoggedAt = 0;
  client.on('error', (error: Error) => {
    if (classifyRedisFailure(error) === 'outage') connection.health.markDown(error);
    if (Date.now() - lastLoggedAt < 30_000) return;
    lastLoggedAt = Date.now();
    logger.warn({ err: error.message }, 'redis connection error (repeats are not logged for 30 s)');
  });
  await firstConnection(client, STARTUP_WAIT_MS);
  if (client.status !== 'ready') connection.health.markDown(new Error(`redis is ${client.status} at startup`));
  return connection;
}

/** Startup waits this long for Redis, then starts degraded (the probe connects it later). */
const STARTUP_WAIT_MS = 2000;

function firstConnection(client: Redis, boundMs: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      client.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, boundMs);
    client.once('ready', done);
  });
}

@Injectable()
export class RedisLifecycle implements OnApplicationShutdown {
  constructor(@Inject(REDIS_CONNECTION) private readonly redis: RedisConnection | null) {}

  async onApplicationShutdown(): Promise<void> {
    if (!this.redis) return;
    this.redis.health.close();
    this.redis.client.disconnect();
  }
}

@Global()
@Module({
  providers: [
    {
      provide: REDIS_CONNECTION,
      inject: [APP_CONFIG, APP_LOGGER],
      useFactory: async (config: AppConfig, logger: AppLogger): Promise<RedisConnection | null> => {
        if (!config.redisUrl) {
          logger.warn(
            'REDIS_URL is not set: rate limits, cache and key invalidation are in-process (one replica only)',
          );
          return null;
        }
        return connectRedis(config.redisUrl, config.redisTimeoutMs, config.redisPrefix, logger);
      },
    },
    RedisLifecycle,
  ],
  exports: [REDIS_CONNECTION],
})
export class RedisModule {}
