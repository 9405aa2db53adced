/**
 * The shared cache and the coalescing lock in Redis (see cache-store.ts). A key's value and its
 * lock share a hash tag, so both scripts touch one cluster slot. Errors propagate: while Redis is
 * down NoCacheStore answers instead (infra/redis/redis-fallback.ts, wired by StoresModule).
 */
import { randomId } from '../../contracts/random-id';
import { redisKeys } from '../../infra/redis/redis-keys';
import { RedisScript } from '../../infra/redis/redis-script';
import type { RedisConnection } from '../../infra/redis/redis.module';
import { type CachedCompletion, CacheStore, type Claim, LOCAL_CLAIM, type LookupResult } from './cache-store';

/**
 * KEYS: value, lock. ARGV: lock token, claim ms ('0': no claim).
 * Returns {1, value} (hit), {2} (claimed), {3} (held by another), {0} (miss, no claim asked).
 */
const lookupOrClaimScript = new RedisScript(`
local value = redis.call('GET', KEYS[1])
if value then return {1, value} end
if ARGV[2] == '0' then return {0} end
if redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2], 'NX') then return {2} end
return {3}`);

/** KEYS: value, lock. ARGV: value ('' none), ttl ms, lock token ('' none). Deletes the lock only if still ours. */
const storeAndReleaseScript = new RedisScript(`
if ARGV[1] ~= '' then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
if ARGV[3] ~= '' and redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1`);

/** KEYS: lock. ARGV: lock token, claim ms. Extends the lock only if still ours. */
const renewClaimScript = new RedisScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`);

function parse(raw: string, nowMs: number): CachedCompletion | null {
  try {
    const entry = JSON.parse(raw) as CachedCompletion;
    return entry.expiresAtMs > nowMs ? entry : null;
  } catch {
    return null; // never serve what we cannot read
  }
}

export class RedisCacheStore extends CacheStore {
  constructor(private readonly redis: RedisConnection) {
    super();
  }

  async get(key: string, nowMs: number): Promise<CachedCompletion | null> {
    const raw = await this.redis.client.get(this.valueKey(key));
    return raw === null ? null : parse(raw, nowMs);
  }

  async lookupOrClaim(key: string, nowMs: number, claimMs: number | null): Promise<LookupResult> {
    const token = randomId(8);
    const [kind, raw] = (await lookupOrClaimScript.run(
      this.redis.client,
      [this.valueKey(key), this.lockKey(key)],
      [token, claimMs ?? 0],
    )) as [number, string?];
    if (kind === 1) {
      const hit = parse(raw!, nowMs);
      if (hit) return { hit };
    }
    if (kind === 2) return { claim: { token } };
    if (kind === 3) return { heldElsewhere: true };
    return { claim: LOCAL_CLAIM };
  }

  async storeAndRelease(
    key: string,
    value: CachedCompletion | null,
    nowMs: number,
    claim: Claim | null,
  ): Promise<void> {
    const token = claim?.token ?? '';
    if (!value && token === '') return;
    const ttlMs = value ? Math.max(1, value.expiresAtMs - nowMs) : 0;
    await storeAndReleaseScript.run(
      this.redis.client,
      [this.valueKey(key), this.lockKey(key)],
      [value ? JSON.stringify(value) : '', ttlMs, token],
    );
  }

  async renewClaim(key: string, claim: Claim, claimMs: number): Promise<void> {
    if (claim.token === null) return;
    await renewClaimScript.run(this.redis.client, [this.lockKey(key)], [claim.token, claimMs]);
  }

  async isClaimed(key: string): Promise<boolean> {
    return (await this.redis.client.exists(this.lockKey(key))) === 1;
  }

  private valueKey(key: string): string {
    return redisKeys.cacheValue(this.redis.prefix, key);
  }

  private lockKey(key: string): string {
    return redisKeys.cacheLock(this.redis.prefix, key);
  }
}
