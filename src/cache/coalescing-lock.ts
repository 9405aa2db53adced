/**
 * Cross-replica coalescing: the replica that takes a key's lock generates, the others wait for
 * its answer to appear in the shared cache. A port with two implementations, picked once by
 * StoresModule:
 * - LocalCoalescingLock (no Redis): every lock is granted; identical requests still share one
 *   generation within this process (CompletionCache's flights);
 * - RedisCoalescingLock: SET NX with an expiry, released only by its holder. While Redis is down
 *   locks are granted locally, like the local lock: cross-replica coalescing is skipped.
 */
import { randomBytes } from 'node:crypto';
import type { RedisConnection } from '../redis/redis.module';
import { RedisScript } from '../rate-limit/redis-script';

export interface LockGrant {
  /** Releases the lock if this holder still has it. Never rejects. */
  release(): Promise<void>;
}

export abstract class CoalescingLock {
  /** The lock, or null when another replica holds it (then wait for its answer). */
  abstract acquire(key: string, ttlMs: number): Promise<LockGrant | null>;

  /** Whether some replica still holds the lock (false when unknown). */
  abstract isHeld(key: string): Promise<boolean>;
}

const LOCAL_GRANT: LockGrant = { release: async () => undefined };

export class LocalCoalescingLock extends CoalescingLock {
  async acquire(): Promise<LockGrant> {
    return LOCAL_GRANT;
  }

  async isHeld(): Promise<boolean> {
    return false;
  }
}

/** Deletes the lock only if this holder's token is still in it. */
const releaseScript = new RedisScript(
  `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
);

export class RedisCoalescingLock extends CoalescingLock {
  constructor(private readonly redis: RedisConnection) {
    super();
  }

  async acquire(key: string, ttlMs: number): Promise<LockGrant | null> {
    const lockKey = this.lockKey(key);
    const token = randomBytes(8).toString('hex');
    const acquired = await this.redis.health.attempt(
      () => this.redis.client.set(lockKey, token, 'PX', ttlMs, 'NX'),
      () => 'LOCAL' as const,
    );
    if (acquired === 'LOCAL') return LOCAL_GRANT;
    if (acquired !== 'OK') return null;
    return {
      release: () =>
        this.redis.health.attempt(
          async () => void (await releaseScript.run(this.redis.client, [lockKey], [token])),
          () => undefined, // it expires on its own
        ),
    };
  }

  async isHeld(key: string): Promise<boolean> {
    return this.redis.health.attempt(
      async () => (await this.redis.client.exists(this.lockKey(key))) === 1,
      () => false,
    );
  }

  private lockKey(key: string): string {
    return `${this.redis.prefix}cache-lock:${key}`;
  }
}
