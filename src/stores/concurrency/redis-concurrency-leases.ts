/**
 * Concurrency leases shared by every replica: per key a sorted set of lease ids scored by their
 * expiry (Redis server time, so replicas' clocks do not matter). Acquiring is one script that
 * drops expired leases, counts the rest and adds one if there is room: N replicas together never
 * exceed the limit. A replica renews its leases every LEASE_TTL / 3; one that crashes stops
 * renewing and its leases lapse within the TTL.
 *
 * Errors propagate: while Redis is down a lease is taken in the in-process leases instead
 * (infra/redis/redis-fallback.ts, wired by StoresModule) and released there. Lease ids are chosen
 * here, before the call, so an acquire that failed client-side (a timeout whose script ran all
 * the same) or a release Redis did not hear is settled by id: removed as soon as Redis answers
 * again, instead of holding a slot on every replica until its TTL.
 */
import { randomId } from '../../contracts/random-id';
import { redisKeys } from '../../infra/redis/redis-keys';
import { RedisScript } from '../../infra/redis/redis-script';
import type { RedisConnection } from '../../infra/redis/redis.module';
import { ConcurrencyLeases, type LeaseGrant } from './concurrency-leases';

export const DEFAULT_LEASE_TTL_MS = 30_000;

const NOW_MS = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)`;

/** KEYS: the key's lease set. ARGV: limit, ttl ms, lease id. Returns {granted 0|1, in flight}. */
const ACQUIRE_SCRIPT = `${NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local count = redis.call('ZCARD', KEYS[1])
if count >= tonumber(ARGV[1]) then return {0, count} end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, count + 1}`;

/** KEYS: a lease set. ARGV: ttl ms, lease id. Pushes the lease's expiry out (re-adds a lapsed one). */
const RENEW_SCRIPT = `${NOW_MS}
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`;

/** KEYS: the key's lease set. Returns the leases not expired. */
const COUNT_SCRIPT = `${NOW_MS}
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')`;

const acquireScript = new RedisScript(ACQUIRE_SCRIPT);
const countScript = new RedisScript(COUNT_SCRIPT);
const renewScript = new RedisScript(RENEW_SCRIPT);

export class RedisConcurrencyLeases extends ConcurrencyLeases {
  /** Leases held in Redis by this replica, renewed until released: lease id → its key's set. */
  private readonly held = new Map<string, string>();
  /**
   * Leases Redis may hold that nobody uses (an acquire or release that failed): lease id → its set
   * and when it failed (past the TTL such a lease has lapsed by itself).
   */
  private readonly unsettled = new Map<string, { set: string; failedAt: number }>();
  private readonly renewTimer: NodeJS.Timeout;
  private readonly unsubscribeHealth: () => void;

  constructor(
    private readonly redis: RedisConnection,
    private readonly ttlMs = DEFAULT_LEASE_TTL_MS,
  ) {
    super();
    this.renewTimer = setInterval(() => void this.renew(), Math.max(10, Math.floor(ttlMs / 3)));
    this.renewTimer.unref();
    this.unsubscribeHealth = redis.health.subscribe((up) => {
      if (up) void this.settle();
    });
  }

  async acquire(keyId: string, limit: number): Promise<LeaseGrant> {
    const set = this.setKey(keyId);
    const leaseId = randomId(9);
    let answer: [number, number];
    try {
      answer = (await acquireScript.run(this.redis.client, [set], [limit, this.ttlMs, leaseId])) as [number, number];
    } catch (error) {
      this.unsettled.set(leaseId, { set, failedAt: Date.now() }); // the script may have run: remove its lease once Redis answers
      throw error;
    }
    const [granted, inFlight] = answer;
    if (granted !== 1) return { granted: false, inFlight };
    this.held.set(leaseId, set);
    let released = false;
    return {
      granted: true,
      inFlight,
      release: () => {
        if (released) return;
        released = true;
        this.held.delete(leaseId);
        // Not awaited; one Redis did not hear is removed when it answers again.
        this.redis.health
          .call(() => this.redis.client.zrem(set, leaseId))
          .catch(() => void this.unsettled.set(leaseId, { set, failedAt: Date.now() }));
      },
    };
  }

  async inFlight(keyId: string): Promise<number> {
    return Number(await countScript.run(this.redis.client, [this.setKey(keyId)], []));
  }

  /** Stops renewing: this replica's leases lapse within the TTL (what a crash does). */
  override async close(): Promise<void> {
    clearInterval(this.renewTimer);
    this.unsubscribeHealth();
  }

  private setKey(keyId: string): string {
    return redisKeys.leases(this.redis.prefix, keyId);
  }

  /** Removes the leases of failed acquires and releases; those Redis does not answer for stay for the next try. */
  private async settle(): Promise<void> {
    for (const [leaseId, { set, failedAt }] of [...this.unsettled]) {
      if (Date.now() - failedAt > this.ttlMs) {
        this.unsettled.delete(leaseId);
        continue;
      }
      try {
        await this.redis.health.call(() => this.redis.client.zrem(set, leaseId));
        this.unsettled.delete(leaseId);
      } catch {
        return;
      }
    }
  }

  private async renew(): Promise<void> {
    if (this.unsettled.size > 0 && this.redis.health.up) await this.settle();
    if (this.held.size === 0 || !this.redis.health.up) return;
    // One script per lease, sent together: on a cluster each goes to its set's node (a pipeline
    // there must stay on one node).
    const held = [...this.held];
    await this.redis.health.attempt(
      async () =>
        void (await Promise.all(
          held.map(([leaseId, set]) => renewScript.run(this.redis.client, [set], [this.ttlMs, leaseId])),
        )),
      () => undefined,
    );
  }
}
