/**
 * Limits failed authentications per client address (fixed one-minute windows), so keys and
 * the admin token cannot be guessed at speed. Only failures are counted, so a client with a
 * valid key pays nothing. Shared across replicas through Redis when configured.
 */
import { Inject, Injectable } from '@nestjs/common';
import type Redis from 'ioredis';
import { AppError } from '../common/app-error';
import { Clock } from '../common/clock';
import type { AppConfig } from '../config/app.config';
import { APP_CONFIG } from '../config/config.module';
import { REDIS } from '../redis/redis.module';
import { LimitEvents } from '../rate-limit/limit-events';

const WINDOW_MS = 60_000;

/**
 * Windows are aligned to the injected clock (window n covers [n*60s, (n+1)*60s)), so every
 * replica agrees on them and tests can move past one; the Redis key of a window expires
 * after it ends.
 */
const INCREMENT_SCRIPT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return count`;

@Injectable()
export class AuthFailureLimiter {
  private readonly windows = new Map<string, { window: number; count: number }>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS) private readonly redis: Redis | null,
    private readonly clock: Clock,
    private readonly events: LimitEvents,
  ) {}

  /**
   * Records one failure for `client` and returns the error to answer with: the 401 given,
   * or a 429 once the client is over the limit.
   */
  async reject(client: string, failure: AppError): Promise<AppError> {
    const { count, resetInMs } = await this.increment(client);
    if (count <= this.config.authFailureLimit) return failure;
    this.events.rateLimitRejected('auth');
    const retryAfter = String(Math.max(1, Math.ceil(resetInMs / 1000)));
    return new AppError('rate_limit_exceeded', 'too many failed authentication attempts; retry later', {
      headers: { 'Retry-After': retryAfter },
    });
  }

  private async increment(client: string): Promise<{ count: number; resetInMs: number }> {
    const now = this.clock.now().getTime();
    const window = Math.floor(now / WINDOW_MS);
    const resetInMs = (window + 1) * WINDOW_MS - now;
    if (this.redis) {
      try {
        const key = `${this.config.redisPrefix}auth-failures:${client}:${window}`;
        const count = (await this.redis.eval(INCREMENT_SCRIPT, 1, key, 2 * WINDOW_MS)) as number;
        return { count, resetInMs };
      } catch {
        // Redis down: fall through to this replica's own count rather than fail open.
      }
    }
    let entry = this.windows.get(client);
    if (!entry || entry.window !== window) {
      if (this.windows.size > 100_000) this.evictOld(window);
      entry = { window, count: 0 };
      this.windows.set(client, entry);
    }
    entry.count += 1;
    return { count: entry.count, resetInMs };
  }

  private evictOld(window: number): void {
    for (const [client, entry] of this.windows) if (entry.window !== window) this.windows.delete(client);
  }
}
