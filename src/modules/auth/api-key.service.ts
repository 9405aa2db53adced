/**
 * Resolves a presented API key to its settings: from the in-memory cache, else one indexed
 * query. What cannot be a key is refused by its shape before any hashing; unknown keys are
 * remembered briefly (KeyCache misses) and concurrent lookups of one key share one query, so
 * neither a flood of random keys nor a burst on a cold key piles queries onto the database.
 * While the database is unavailable, keys verified within the last hour keep authenticating
 * unless they changed meanwhile (so only while KeyInvalidation is current); any other key gets 503 (it cannot be checked), never a 401 it might not deserve.
 */
import { Injectable } from '@nestjs/common';
import { Clock } from '../../contracts/clock';
import { DependencyDown } from '../../infra/lifecycle/dependency-health';
import { Database } from '../../infra/database/database.service';
import { hashApiKey, looksLikeApiKey } from './api-key.crypto';
import { type ApiKeyRow, KEY_WITH_TEAM_SQL, type TeamJson, toAuthenticatedKey } from './api-key.row';
import type { AuthenticatedKey } from '../../contracts/authenticated-key';
import { KeyCache } from './key-cache';
import { KeyInvalidation } from './key-invalidation';

/** Freshness of a cached key: long while every key change reaches this replica, else the 5 s bound. */
const FRESH_WITH_LIVE_BUS_MS = 60_000;
const FRESH_WITHOUT_BUS_MS = 5_000;

export function isUsable(key: AuthenticatedKey, now: Date): boolean {
  return key.active && key.revokedAt === null && (key.expiresAt === null || key.expiresAt > now);
}

@Injectable()
export class ApiKeyService {
  private readonly lookups = new Map<string, Promise<AuthenticatedKey | null>>();

  constructor(
    private readonly db: Database,
    private readonly cache: KeyCache,
    private readonly invalidation: KeyInvalidation,
    private readonly clock: Clock,
  ) {}

  /** The key's settings when it exists and is usable now; null for unknown, inactive, revoked or expired. */
  async authenticate(plaintext: string): Promise<AuthenticatedKey | null> {
    if (!looksLikeApiKey(plaintext)) return null;
    const now = this.clock.now();
    const nowMs = now.getTime();
    const hash = hashApiKey(plaintext);
    const maxAgeMs = this.invalidation.current ? FRESH_WITH_LIVE_BUS_MS : FRESH_WITHOUT_BUS_MS;
    let key = this.cache.get(hash, nowMs, maxAgeMs) ?? null;
    if (!key) {
      if (this.cache.isKnownMiss(hash, nowMs)) return null;
      key = await this.lookup(hash, nowMs);
    }
    return key && isUsable(key, now) ? key : null;
  }

  private lookup(hash: string, nowMs: number): Promise<AuthenticatedKey | null> {
    let pending = this.lookups.get(hash);
    if (!pending) {
      pending = this.read(hash, nowMs).finally(() => this.lookups.delete(hash));
      this.lookups.set(hash, pending);
    }
    return pending;
  }

  private async read(hash: string, nowMs: number): Promise<AuthenticatedKey | null> {
    const epoch = this.cache.epoch;
    let rows: (ApiKeyRow & { team: TeamJson | null })[];
    try {
      ({ rows } = await this.db.query<ApiKeyRow & { team: TeamJson | null }>(KEY_WITH_TEAM_SQL, [hash]));
    } catch (error) {
      // Only a cache that has every change made meanwhile may stand in for the database.
      const trusted = error instanceof DependencyDown && this.invalidation.current;
      const stale = trusted ? this.cache.getStale(hash, nowMs) : undefined;
      if (stale) return stale;
      throw error;
    }
    if (rows.length === 0) {
      this.cache.rememberMiss(hash, nowMs, epoch);
      return null;
    }
    const key = toAuthenticatedKey(rows[0]);
    this.cache.set(hash, key, nowMs, epoch);
    return key;
  }
}
