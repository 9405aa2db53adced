/**
 * Where completed generations are kept: Redis when REDIS_URL is set (shared by replicas), else
 * a bounded in-process LRU. Values carry their own expiry, read against the injected clock, so
 * both stores expire entries the same way (and tests can move time); Redis also expires them
 * itself so nothing lingers.
 */
import type { FinishReason, TokenUsage } from '../generation/providers/provider.types';

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

/** Minimal Redis surface the cache needs (ioredis satisfies it). */
export interface RedisLike {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, mode: 'PX', ms: number): Promise<unknown>;
}

export class RedisCacheStore extends CacheStore {
  constructor(
    private readonly redis: RedisLike,
    private readonly prefix: string,
  ) {
    super();
  }

  async get(key: string, nowMs: number): Promise<CachedCompletion | null> {
    const raw = await this.redis.get(`${this.prefix}cache:${key}`);
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
    await this.redis.set(`${this.prefix}cache:${key}`, JSON.stringify(value), 'PX', ttlMs);
  }
}
