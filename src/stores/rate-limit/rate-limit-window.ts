/**
 * Window math and the Redis script of the per-key rate limits.
 *
 * Algorithm: fixed windows aligned to the injected clock. Window n covers
 * [n * windowMs, (n + 1) * windowMs), so every replica agrees on the window without talking to
 * the others, a test moves to the next window by advancing its FakeClock, and the count of a
 * window is exact: at most `limit` requests of a window are accepted, however many replicas
 * and concurrent requests there are. The price of fixed windows is the boundary burst (up to
 * 2 × limit within 60 s straddling a boundary), which a per-minute budget tolerates.
 */
import { redisKeys } from '../../infra/redis/redis-keys';

/** Requests per minute and tokens per minute are both counted in one-minute windows. */
export const RATE_LIMIT_WINDOW_MS = 60_000;

export interface WindowPosition {
  /** n: the window covers [n * windowMs, (n + 1) * windowMs). */
  index: number;
  /** Milliseconds until the window ends, in (0, windowMs]. */
  resetInMs: number;
}

export function windowAt(nowMs: number, windowMs: number): WindowPosition {
  const index = Math.floor(nowMs / windowMs);
  return { index, resetInMs: (index + 1) * windowMs - nowMs };
}

/** Whole seconds for X-RateLimit-Reset and Retry-After: rounded up, so a client never retries early. */
export function secondsUntil(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/** Redis keys of one tracker's window; the hash tag keeps both in one cluster slot. */
export function windowKeys(prefix: string, tracker: string, index: number): { requests: string; tokens: string } {
  return redisKeys.rateLimitWindow(prefix, tracker, index);
}

/**
 * One request hit, atomically: count it in the window and read the tokens charged to the
 * window so far. KEYS: requests, tokens. ARGV: key lifetime in ms. Returns {count, tokens}.
 * The lifetime only reclaims memory (the window index is in the key name), so a window key
 * outliving its window does no harm.
 */
export const HIT_SCRIPT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local tokens = tonumber(redis.call('GET', KEYS[2]) or '0')
return {count, tokens}`;

/** Adds tokens to a window. KEYS: tokens. ARGV: tokens, key lifetime in ms. Returns the new total. */
export const CHARGE_TOKENS_SCRIPT = `
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return total`;
