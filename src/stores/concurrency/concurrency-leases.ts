/**
 * How many generations each key has in flight (key field `max_concurrent`): a port with two
 * implementations, picked once by StoresModule.
 * - MemoryConcurrencyLeases: this process (one replica, or any replica while Redis is down);
 * - RedisConcurrencyLeases (redis-concurrency-leases.ts): one lease per generation in a sorted
 *   set per key, so the limit holds across replicas; leases expire unless renewed, so a replica
 *   that crashes cannot keep its slots. While Redis is down the in-process leases are taken
 *   instead (StoresModule wires the fallback): the limit then holds per replica.
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
