/**
 * Rate-limit counts shared by every replica: one atomic Lua script per hit (rate-limit-window.ts),
 * so N replicas together accept at most the limit. Errors propagate: while Redis is down the
 * in-process counters answer instead (infra/redis/redis-fallback.ts, wired by StoresModule).
 */
import type { Clock } from '../../contracts/clock';
import { RedisScript } from '../../infra/redis/redis-script';
import type { RedisConnection } from '../../infra/redis/redis.module';
import { RateLimitCounters, type RateLimitHit } from './rate-limit-counters';
import { CHARGE_TOKENS_SCRIPT, HIT_SCRIPT, windowAt, windowKeys } from './rate-limit-window';

const hitScript = new RedisScript(HIT_SCRIPT);
const chargeTokensScript = new RedisScript(CHARGE_TOKENS_SCRIPT);

export class RedisRateLimitCounters extends RateLimitCounters {
  constructor(
    private readonly redis: RedisConnection,
    private readonly clock: Clock,
  ) {
    super();
  }

  async hit(tracker: string, windowMs: number): Promise<RateLimitHit> {
    const { index, resetInMs } = windowAt(this.clock.now().getTime(), windowMs);
    const keys = windowKeys(this.redis.prefix, tracker, index);
    const reply = await hitScript.run(this.redis.client, [keys.requests, keys.tokens], [2 * windowMs]);
    const [count, tokens] = reply as [number, number];
    return { count, tokens, resetInMs };
  }

  async chargeTokens(tracker: string, windowMs: number, tokens: number): Promise<void> {
    if (tokens <= 0) return;
    const keys = windowKeys(this.redis.prefix, tracker, windowAt(this.clock.now().getTime(), windowMs).index);
    await chargeTokensScript.run(this.redis.client, [keys.tokens], [tokens, 2 * windowMs]);
  }
}
