/**
 * How many generations each key has in flight (key field `max_concurrent`): a port with two
 * implementations, picked once by StoresModule.
 * - MemoryConcurrencyLeases: this process (one replica, or any replica while Redis is down);
 * - RedisConcurrencyLeases (redis-concurrency-leases.ts): one lease per generation in a sorted
 *   set per key, so the limit holds across replicas; leases expire unless renewed, so a replica
 *   that crashes cannot keep its slots.
 */

/** The answer to an acquire: a lease to release once, or a refusal. */
export type LeaseGrant =
  | { granted: true; /** This key's generations in flight, this one included. */ inFlight: number; release(): void }
  | { granted: false; inFlight: number };

export abstract class ConcurrencyLeases {
  /** One more generation of `keyId` if it has fewer than `limit` in flight. */
  abstract acquire(keyId: string, limit: number): Promise<LeaseGrant>;

  /** The key's generations in flight now (admin API). */
  abstract inFlight(keyId: string): Promise<number>;

  async close(): Promise<void> {}
}

export class MemoryConcurrencyLeases extends ConcurrencyLeases {
  private readonly counts = new Map<string, number>();

  async acquire(keyId: string, limit: number): Promise<LeaseGrant> {
    return this.acquireNow(keyId, limit);
  }

  async inFlight(keyId: string): Promise<number> {
    return this.counts.get(keyId) ?? 0;
  }

  /** Synchronous form, for the Redis store's fallback. */
  acquireNow(keyId: string, limit: number): LeaseGrant {
    const count = this.counts.get(keyId) ?? 0;
    if (count >= limit) return { granted: false, inFlight: count };
    this.counts.set(keyId, count + 1);
    let released = false;
    return {
      granted: true,
      inFlight: count + 1,
      release: () => {
        if (released) return;
        released = true;
        const left = (this.counts.get(keyId) ?? 1) - 1;
        if (left > 0) this.counts.set(keyId, left);
        else this.counts.delete(keyId); // idle keys take no memory
      },
    };
  }
}
