/**
 * The per-tracker request and token counts of the current rate-limit window (rate limits, TPM,
 * failed authentications): a port with two implementations, picked once by StoresModule.
 * - MemoryRateLimitCounters: this process (one replica, or any replica while Redis is down);
 * - RedisRateLimitCounters: one atomic Lua script per check, so N replicas together accept at
 *   most the limit. While Redis is down it counts in its in-process twin instead (the limit
 *   then holds per replica) rather than failing every request or letting everything through.
 * It is also the @nestjs/throttler storage of the app: the throttler's interface lacks the
 * window's token count (TPM) and a way to charge tokens, which hit() and chargeTokens() add.
 */
import type { ThrottlerStorage } from '@nestjs/throttler';
import type { Clock } from '../../contracts/clock';
import type { RedisConnection } from '../../infra/redis/redis.module';
import { CHARGE_TOKENS_SCRIPT, HIT_SCRIPT, secondsUntil, windowAt, windowKeys } from './rate-limit-window';
import { RedisScript } from '../../infra/redis/redis-script';

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

export abstract class RateLimitCounters implements ThrottlerStorage {
  /** Counts one request of `tracker` in the current window. */
  abstract hit(tracker: string, windowMs: number): Promise<RateLimitHit>;

  /** Charges tokens to `tracker`'s current window (TPM: checked before a request, charged after it). */
  abstract chargeTokens(tracker: string, windowMs: number, tokens: number): Promise<void>;

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
}

interface LocalWindow {
  index: number;
  count: number;
  tokens: number;
}

/** Above this many trackers, entries of past windows are dropped. */
const MAX_LOCAL_ENTRIES = 100_000;

export class MemoryRateLimitCounters extends RateLimitCounters {
  private readonly local = new Map<string, LocalWindow>();

  constructor(private readonly clock: Clock) {
    super();
  }

  async hit(tracker: string, windowMs: number): Promise<RateLimitHit> {
    return this.hitNow(tracker, windowMs);
  }

  async chargeTokens(tracker: string, windowMs: number, tokens: number): Promise<void> {
    this.chargeNow(tracker, windowMs, tokens);
  }

  /** Synchronous forms, for the Redis store's fallback. */
  hitNow(tracker: string, windowMs: number): RateLimitHit {
    const { index, resetInMs } = windowAt(this.clock.now().getTime(), windowMs);
    const entry = this.window(tracker, index);
    entry.count += 1;
    return { count: entry.count, tokens: entry.tokens, resetInMs };
  }

  chargeNow(tracker: string, windowMs: number, tokens: number): void {
    if (tokens <= 0) return;
    this.window(tracker, windowAt(this.clock.now().getTime(), windowMs).index).tokens += tokens;
  }

  private window(tracker: string, index: number): LocalWindow {
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
}

const hitScript = new RedisScript(HIT_SCRIPT);
const chargeTokensScript = new RedisScript(CHARGE_TOKENS_SCRIPT);

export class RedisRateLimitCounters extends RateLimitCounters {
  constructor(
    private readonly redis: RedisConnection,
    private readonly clock: Clock,
    private readonly fallback: MemoryRateLimitCounters,
  ) {
    super();
  }

  async hit(tracker: string, windowMs: number): Promise<RateLimitHit> {
    const { index, resetInMs } = windowAt(this.clock.now().getTime(), windowMs);
    const keys = windowKeys(this.redis.prefix, tracker, index);
    return this.redis.health.attempt(
      async () => {
        const reply = await hitScript.run(this.redis.client, [keys.requests, keys.tokens], [2 * windowMs]);
        const [count, tokens] = reply as [number, number];
        return { count, tokens, resetInMs };
      },
      () => this.fallback.hitNow(tracker, windowMs),
    );
  }

  async chargeTokens(tracker: string, windowMs: number, tokens: number): Promise<void> {
    if (tokens <= 0) return;
    const keys = windowKeys(this.redis.prefix, tracker, windowAt(this.clock.now().getTime(), windowMs).index);
    await this.redis.health.attempt(
      () => chargeTokensScript.run(this.redis.client, [keys.tokens], [tokens, 2 * windowMs]),
      () => this.fallback.chargeNow(tracker, windowMs, tokens),
    );
  }
}
