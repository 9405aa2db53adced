/**
 * In-memory lookup of API keys by hash, so an authenticated request costs no database round
 * trip. Entries are dropped at once when this replica changes a key, and when another replica
 * announces a change (key-invalidation.ts). Entries also expire after a bound, which caps how
 * stale a replica can be if an announcement is lost (5 s without Redis pub/sub).
 */
import type { AuthenticatedKey } from './auth.types';

interface Entry {
  key: AuthenticatedKey;
  hash: string;
  expiresAtMs: number;
}

export class KeyCache {
  private readonly byHash = new Map<string, Entry>();
  private readonly hashById = new Map<string, string>();
  /**
   * Bumped by every invalidation. A lookup that read the database before a change was
   * announced must not cache what it read: it passes the epoch it started in to set().
   */
  private currentEpoch = 0;

  get epoch(): number {
    return this.currentEpoch;
  }

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 100_000,
  ) {}

  get(hash: string, nowMs: number): AuthenticatedKey | undefined {
    const entry = this.byHash.get(hash);
    if (!entry) return undefined;
    if (entry.expiresAtMs <= nowMs) {
      this.delete(entry);
      return undefined;
    }
    return entry.key;
  }

  /** Caches `key` unless an invalidation happened since `readInEpoch` (then the read may be stale). */
  set(hash: string, key: AuthenticatedKey, nowMs: number, readInEpoch: number = this.currentEpoch): void {
    if (readInEpoch !== this.currentEpoch) return;
    if (this.byHash.size >= this.maxEntries) this.evictAll();
    const previous = this.hashById.get(key.id);
    if (previous && previous !== hash) this.byHash.delete(previous);
    this.byHash.set(hash, { key, hash, expiresAtMs: nowMs + this.ttlMs });
    this.hashById.set(key.id, hash);
  }

  invalidate(id: string): void {
    this.currentEpoch += 1;
    const hash = this.hashById.get(id);
    if (hash) this.byHash.delete(hash);
    this.hashById.delete(id);
  }

  clear(): void {
    this.currentEpoch += 1;
    this.evictAll();
  }

  private evictAll(): void {
    this.byHash.clear();
    this.hashById.clear();
  }

  private delete(entry: Entry): void {
    this.byHash.delete(entry.hash);
    this.hashById.delete(entry.key.id);
  }
}
