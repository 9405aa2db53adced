/**
 * The per-tracker request and token counts of the current rate-limit window (rate limits, TPM,
 * failed authentications): a port with two implementations, picked once by StoresModule.
 * - MemoryRateLimitCounters: this process (one replica, or any replica while Redis is down);
 * - RedisRateLimitCounters: one atomic Lua script per check, so N replicas together accept at
 *   most the limit. While Redis is down the in-process one counts instead (StoresModule wires
 *   the fallback), so the limit then holds per replica rather than failing every request or
 *   letting everything through.
 * It is also the @nestjs/throttler storage of the app: the throttler's interface lacks the
 * window's token count (TPM) and a way to charge tokens, which hit() and chargeTokens() add.
 */
import type { ThrottlerStorage } from '@nestjs/throttler';
import { secondsUntil } from './rate-limit-window';

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
