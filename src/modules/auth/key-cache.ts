/**
 * In-memory lookup of API keys by hash, so an authenticated request costs no database round
 * trip, and of recent misses, so a flood of unknown keys does not reach the database either.
 *
 * An entry is fresh for a bound the caller gives (60 s while the replica bus delivers changes,
 * 5 s otherwise: the worst staleness after a change made on another replica). Entries are
 * dropped at once when a key changes (on this replica or announced by another). A stale entry
 * is kept a while longer as a fallback used only when the database cannot be asked: recently
 * seen keys keep authenticating through a database outage.
 */
import type { AuthenticatedKey } from '../../contracts/authenticated-key';

interface Entry {
  key: AuthenticatedKey;
  hash: string;
  verifiedAtMs: number;
}

/** How long a verified key may stand in for the database while it is unavailable. */
export const STALE_IF_ERROR_MS = 60 * 60_000;
/** How long an unknown key is remembered as unknown. */
export const MISS_TTL_MS = 5_000;

export class KeyCache {
  private readonly byHash = new Map<string, Entry>();
  private readonly hashById = new Map<string, string>();
  /** Unknown hashes → when they stop counting as known-unknown. Insertion-ordered for eviction. */
  private readonly misses = new Map<string, number>();
  /**
   * Bumped by every invalidation. A lookup that read the database before a change was
   * announced must not cache what it read: it passes the epoch it started in to set().
   */
  private currentEpoch = 0;

  get epoch(): number {
    return this.currentEpoch;
  }

  constructor(
    private readonly maxEntries = 100_000,
    private readonly maxMisses = 10_000,
  ) {}

  /** The key if it was verified less than `maxAgeMs` ago. */
  get(hash: string, nowMs: number, maxAgeMs: number): AuthenticatedKey | undefined {
    const entry = this.byHash.get(hash);
    return entry && nowMs - entry.verifiedAtMs < maxAgeMs ? entry.key : undefined;
  }

  /** The key if it was verified within STALE_IF_ERROR_MS: only for when the database is down. */
  getStale(hash: string, nowMs: number): AuthenticatedKey | undefined {
    const entry = this.byHash.get(hash);
    if (!entry) return undefined;
    if (nowMs - entry.verifiedAtMs < STALE_IF_ERROR_MS) return entry.key;
    this.delete(entry);
    return undefined;
  }

  /** Caches `key` unless an invalidation happened since `readInEpoch` (then the read may be stale). */
  set(hash: string, key: AuthenticatedKey, nowMs: number, readInEpoch: number = this.currentEpoch): void {
    if (readInEpoch !== this.currentEpoch) return;
    if (this.byHash.size >= this.maxEntries) this.evictAll();
    const previous = this.hashById.get(key.id);
    if (previous && previous !== hash) this.byHash.delete(previous);
    this.byHash.set(hash, { key, hash, verifiedAtMs: nowMs });
    this.hashById.set(key.id, hash);
    this.misses.delete(hash);
  }

  isKnownMiss(hash: string, nowMs: number): boolean {
    const until = this.misses.get(hash);
    if (until === undefined) return false;
    if (until > nowMs) return true;
    this.misses.delete(hash);
    return false;
  }

  rememberMiss(hash: string, nowMs: number, readInEpoch: number): void {
    if (readInEpoch !== this.currentEpoch) return;
    this.misses.delete(hash);
    if (this.misses.size >= this.maxMisses) this.misses.delete(this.misses.keys().next().value as string);
    this.misses.set(hash, nowMs + MISS_TTL_MS);
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
    this.misses.clear();
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
