/**
 * The cache while Redis is down: skipped. Lookups miss and answers are not stored (each replica
 * keeping its own copies would serve answers the others cannot invalidate or count consistently,
 * and the outage is short); claims are granted locally, so identical requests still share a
 * generation within each replica but not across them.
 */
import { type CachedCompletion, CacheStore, type LookupResult, LOCAL_CLAIM } from './cache-store';

export class NoCacheStore extends CacheStore {
  async get(): Promise<CachedCompletion | null> {
    return null;
  }

  async lookupOrClaim(): Promise<LookupResult> {
    return { claim: LOCAL_CLAIM };
  }

  async storeAndRelease(): Promise<void> {
    // an unreleased claim in Redis expires on its own
  }

  async renewClaim(): Promise<void> {
    // claims are local while Redis is down
  }

  async isClaimed(): Promise<boolean> {
    return false;
  }
}
