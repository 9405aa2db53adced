/**
 * Per-key request and token counts of the current rate-limit window: in Redis when REDIS_URL
 * is set (one atomic Lua script per check, so N replicas together accept at most the limit),
 * else in this process. It is the @nestjs/throttler storage of the app, and adds what the
 * throttler's interface lacks: the window's token count (TPM) and a way to charge tokens.
 *
 * When Redis fails, counting falls back to this process (the limit then holds per replica)
 * rather than failing every request or letting everything through; readiness reports Redis.
 */
import { Inject, Injectable } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import type Redis from 'ioredis';
import { Clock } from '../common/clock';
import type { AppConfig } from '../config/app.config';
import { APP_CONFIG } from '../config/config.module';
import { APP_LOGGER, type AppLogger } from '../logging/logger';
import { REDIS } from '../redis/redis.module';
import { CHARGE_TOKENS_SCRIPT, HIT_SCRIPT, secondsUntil, windowAt, windowKeys } from './rate-limit-window';
import { RedisScript } from './redis-script';

export interface RateLimitHit {
  /** Requests counted in the current window, this one included. */
  count: number;
  /** Tokens charged to the current window so far. */
  tokens: number;
  /** Milliseconds until the window ends. */
  resetInMs: number;
}

/** Not exported by @nestjs/throttler's index. */
type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

interface LocalWindow {
  index: number;
  count: number;
  tokens: number;
}

/** Above this many trackers, entries of past windows are dropped. */
const MAX_LOCAL_ENTRIES = 100_000;
/** How often a Redis failure is logged at most. */
const FAILURE_LOG_INTERVAL_MS = 10_000;

const hitScript = new RedisScript(HIT_SCRIPT);
const chargeTokensScript = new RedisScript(CHARGE_TOKENS_SCRIPT);

@Injectable()
export class RateLimitStore implements ThrottlerStorage {
  private readonly local = new Map<string, LocalWindow>();
  private lastFailureLog = 0;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS) private readonly redis: Redis | null,
    private readonly clock: Clock,
    @Inject(APP_LOGGER) private readonly logger: AppLogger,
  ) {}

  /** Counts one request of `tracker` in the current window. */
  async hit(tracker: string, windowMs: number): Promise<RateLimitHit> {
    const { index, resetInMs } = windowAt(this.clock.now().getTime(), windowMs);
    if (this.redis) {
      try {
        const keys = windowKeys(this.config.redisPrefix, tracker, index);
        const [count, tokens] = (await hitScript.run(this.redis, [keys.requests, keys.tokens], [2 * windowMs])) as [
          number,
          number,
        ];
        return { count, tokens, resetInMs };
      } catch (error) {
        this.redisFailed(error);
      }
    }
    const entry = this.localWindow(tracker, index);
    entry.count += 1;
    return { count: entry.count, tokens: entry.tokens, resetInMs };
  }

  /** Charges tokens to `tracker`'s current window (TPM: checked before a request, charged after it). */
  async chargeTokens(tracker: string, windowMs: number, tokens: number): Promise<void> {
    if (tokens <= 0) return;
    const { index } = windowAt(this.clock.now().getTime(), windowMs);
    if (this.redis) {
      try {
        const keys = windowKeys(this.config.redisPrefix, tracker, index);
        await chargeTokensScript.run(this.redis, [keys.tokens], [tokens, 2 * windowMs]);
        return;
      } catch (error) {
        this.redisFailed(error);
      }
    }
    this.localWindow(tracker, index).tokens += tokens;
  }

  /** ThrottlerStorage: `key` is the tracker; windows are fixed (blocked until the window ends). */
  async increment(
    key: string,
    ttl: number,
    limit: number,
    _blockDuration: number,
    _name: string,
  ): Promise<ThrottlerStorageRecord> {
    const { count, resetInMs } = await this.hit(key, ttl);
    const seconds = secondsUntil(resetInMs);
    const isBlocked = count > limit;
    return { totalHits: count, timeToExpire: seconds, isBlocked, timeToBlockExpire: isBlocked ? seconds : 0 };
  }

  private localWindow(tracker: string, index: number): LocalWindow {
    let entry = this.local.get(tracker);
    if (!entry || entry.index !== index) {
      if (!entry && this.local.size >= MAX_LOCAL_ENTRIES) this.evictBefore(index);
      entry = { index, count: 0, tokens: 0 };
      this.local.set(tracker, entry);
    }
    return entry;
  }

  private evictBefore(index: number): void {
    for (const [tracker, entry] of this.local) if (entry.index < index) this.local.delete(tracker);
  }

  private redisFailed(error: unknown): void {
    const now = Date.now();
    if (now - this.lastFailureLog < FAILURE_LOG_INTERVAL_MS) return;
    this.lastFailureLog = now;
    this.logger.warn({ err: (error as Error).message }, 'rate limit: Redis failed; counting in this process meanwhile');
  }
}
