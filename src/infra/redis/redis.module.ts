/**
 * The shared Redis connection when Redis is configured (REDIS_URL, a Redis Cluster by
 * REDIS_CLUSTER_NODES, or Sentinels by REDIS_SENTINELS; else null: the stores module then wires
 * the in-process stores), and the one monitor of its health. The three are one `RedisClient` to
 * the stores: every key a Lua script touches shares a hash tag (redis-keys.ts), so each script runs
 * on one cluster slot, and a Sentinel-watched client follows a failover by itself (it asks the
 * Sentinels for the master on every reconnection; until the new master answers, calls fail at
 * once and the degraded mode below answers).
 *
 * No call on the request path waits on Redis for longer than REDIS_TIMEOUT_MS: there is no
 * offline queue (a command while disconnected fails at once) and every command has that
 * timeout. The first failure marks Redis down; from then on the stores skip it (their in-process
 * fallbacks answer) until a background PING answers again. A connection that stays hung while
 * ioredis believes it is open is replaced after a few unanswered probes.
 */
import { Global, Inject, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import Redis, { Cluster, type RedisOptions, ReplyError } from 'ioredis';
import { DependencyHealth, type FailureKind } from '../lifecycle/dependency-health';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app.config';
import type { RedisTarget } from '../config/redis.config';
import { APP_LOGGER, type AppLogger } from '../logging/logger';

/** Probes while down; after this many unanswered ones on an "open" connection it is replaced. */
const PROBE_INTERVAL_MS = 500;
const PROBES_BEFORE_RECONNECT = 4;

/** One Redis, a Sentinel-watched master, or a Redis Cluster: the commands the stores use are the same. */
export type RedisClient = Redis | Cluster;

/** Keep reconnecting (capped back-off) so the server recovers when Redis comes back. */
const reconnectDelay = (attempt: number): number => Math.min(attempt * 100, 1000);

export function createRedis(target: RedisTarget | string, timeoutMs: number): RedisClient {
  const bounded: RedisOptions = {
    maxRetriesPerRequest: 0,
    commandTimeout: timeoutMs,
    connectTimeout: Math.max(1000, timeoutMs * 4),
  };
  if (typeof target === 'string') target = { kind: 'url', url: target };
  if (target.kind === 'url') {
    return new Redis(target.url, { ...bounded, enableOfflineQueue: false, retryStrategy: reconnectDelay });
  }
  const secured: RedisOptions = {
    ...bounded,
    ...(target.password !== null ? { password: target.password } : {}),
    ...(target.tls ? { tls: {} } : {}),
  };
  if (target.kind === 'sentinel') {
    return new Redis({
      ...secured,
      sentinels: target.sentinels,
      name: target.name,
      ...(target.password !== null ? { sentinelPassword: target.password } : {}),
      enableTLSForSentinelMode: target.tls,
      // Hears +switch-master from the Sentinels: reconnects to the new master without waiting
      // for the old one's socket to fail.
      failoverDetector: true,
      enableOfflineQueue: false,
      retryStrategy: reconnectDelay,
      sentinelRetryStrategy: reconnectDelay,
    });
  }
  return new Cluster(target.nodes, {
    redisOptions: secured,
    enableOfflineQueue: false,
    clusterRetryStrategy: reconnectDelay,
    // A moved slot (a failover or resharding) is followed at once; the slot map is refreshed
    // within the request's own bound.
    retryDelayOnFailover: 50,
    retryDelayOnMoved: 0,
    slotsRefreshTimeout: Math.max(1000, timeoutMs * 4),
  });
}

/**
 * A second connection to the same Redis for SUBSCRIBE (a subscribed connection runs nothing
 * else). The caller subscribes again on each 'ready' itself, so it knows when it is subscribed.
 */
export function subscriberOf(client: RedisClient): RedisClient {
  return client instanceof Cluster ? client.duplicate() : client.duplicate({ autoResubscribe: false });
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
    readonly client: RedisClient,
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
  target: RedisTarget | string,
  timeoutMs: number,
  prefix: string,
  logger: AppLogger,
): Promise<RedisConnection> {
  const client = createRedis(target, timeoutMs);
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

function firstConnection(client: RedisClient, boundMs: number): Promise<void> {
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
        if (!config.redis) {
          logger.warn(
            'Redis is not configured: rate limits, cache and key invalidation are in-process (one replica only)',
          );
          return null;
        }
        return connectRedis(config.redis, config.redisTimeoutMs, config.redisPrefix, logger);
      },
    },
    RedisLifecycle,
  ],
  exports: [REDIS_CONNECTION],
})
export class RedisModule {}
