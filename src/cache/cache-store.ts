/**
 * Where completed generations are kept: a port with two implementations, picked once by
 * StoresModule: Redis when REDIS_URL is set (shared by replicas), else a bounded in-process LRU. Values carry their own expiry, read against the injected clock, so
 * both stores expire entries the same way (and tests can move time); Redis also expires them
 * itself so nothing lingers.
 */
import type { FinishReason, TokenUsage } from '../domain/generation';
import type { RedisConnection } from '../redis/redis.module';

export interface CachedCompletion {
  output: string;
  finishReason: FinishReason;
  /** The usage of the generation that produced it (answers from the cache report zero). */
  usage: TokenUsage;
  /** The model that produced it. */
  model: string;
  /** Epoch milliseconds after which the entry is stale. */
  expiresAtMs: number;
}

export abstract class CacheStore {
  abstract get(key: string, nowMs: number): Promise<CachedCompletion | null>;
  abstract set(key: string, value: CachedCompletion, nowMs: number): Promise<void>;
}

/** Insertion-ordered Map as an LRU: a read moves the entry to the end, eviction takes the front. */
export class MemoryCacheStore extends CacheStore {
  private readonly entries = new Map<string, CachedCompletion>();

  constructor(private readonly maxEntries: number) {
    super();
  }

  get size(): number {
    return this.entries.size;
  }

  async get(key: string, nowMs: number): Promise<CachedCompletion | null> {
    const entry = this.entries.get(key);
    if (!entry) return null;
    this.entries.delete(key);
    if (entry.expiresAtMs <= nowMs) return null;
    this.entries.set(key, entry);
    return entry;
  }

  async set(key: string, value: CachedCompletion): Promise<void> {
    this.entries.delete(key);
    this.entries.set(key, value);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }
}

/**
 * The shared cache in Redis. While Redis is down the cache is skipped: lookups miss and answers
 * are not stored (each replica keeping its own copies would serve answers the others cannot
 * invalidate or count consistently, and the outage is short).
 */
export class RedisCacheStore extends CacheStore {
  constructor(private readonly redis: RedisConnection) {
    super();
  }

  async get(key: string, nowMs: number): Promise<CachedCompletion | null> {
    const raw = await this.redis.health.attempt(
      () => this.redis.client.get(`${this.redis.prefix}cache:${key}`),
      () => null,
    );
    if (raw === null) return null;
    let entry: CachedCompletion;
    try {
      entry = JSON.parse(raw) as CachedCompletion;
    } catch {
      return null; // never serve what we cannot read
    }
    return entry.expiresAtMs > nowMs ? entry : null;
  }

  async set(key: string, value: CachedCompletion, nowMs: number): Promise<void> {
    const ttlMs = Math.max(1, value.expiresAtMs - nowMs);
    await this.redis.health.attempt(
      () => this.redis.client.set(`${this.redis.prefix}cache:${key}`, JSON.stringify(value), 'PX', ttlMs),
      () => undefined,
    );
  }
}
