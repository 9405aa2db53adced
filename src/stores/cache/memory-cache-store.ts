/** The cache of one replica without Redis: a bounded in-process LRU; every claim is granted. */
import { type CachedCompletion, CacheStore, type Claim, LOCAL_CLAIM, type LookupResult } from './cache-store';

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
    return this.read(key, nowMs);
  }

  async lookupOrClaim(key: string, nowMs: number, _claimMs?: number | null): Promise<LookupResult> {
    const hit = this.read(key, nowMs);
    return hit ? { hit } : { claim: LOCAL_CLAIM };
  }

  async storeAndRelease(
    key: string,
    value: CachedCompletion | null,
    _nowMs?: number,
    _claim?: Claim | null,
  ): Promise<void> {
    if (!value) return;
    this.entries.delete(key);
    this.entries.set(key, value);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  async renewClaim(): Promise<void> {
    // every claim is local: nothing to extend
  }

  async isClaimed(): Promise<boolean> {
    return false;
  }

  private read(key: string, nowMs: number): CachedCompletion | null {
    const entry = this.entries.get(key);
    if (!entry) return null;
    this.entries.delete(key);
    if (entry.expiresAtMs <= nowMs) return null;
    this.entries.set(key, entry);
    return entry;
  }
}
