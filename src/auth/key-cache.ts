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

  set(hash: string, key: AuthenticatedKey, nowMs: number): void {
    if (this.byHash.size >= this.maxEntries) this.clear();
    const previous = this.hashById.get(key.id);
    if (previous && previous !== hash) this.byHash.delete(previous);
    this.byHash.set(hash, { key, hash, expiresAtMs: nowMs + this.ttlMs });
    this.hashById.set(key.id, hash);
  }

  invalidate(id: string): void {
    const hash = this.hashById.get(id);
    if (hash) this.byHash.delete(hash);
    this.hashById.delete(id);
  }

  clear(): void {
    this.byHash.clear();
    this.hashById.clear();
  }

  private delete(entry: Entry): void {
    this.byHash.delete(entry.hash);
    this.hashById.delete(entry.key.id);
  }
}
