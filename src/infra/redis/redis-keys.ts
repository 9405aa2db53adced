/**
 * Every Redis key name of the server, in one place, so the rule that keeps a Redis Cluster
 * working is kept in one place too: **each Lua script touches the keys of one entity, and all
 * of them carry that entity's hash tag** (`{...}`: Redis Cluster hashes only the tag, so they
 * land in one slot and the script runs on one node). A key no script shares with another needs
 * no tag. A new store (a team's counters, say) adds its names here with the entity it belongs to
 * in the tag, and a script that must touch two entities is two scripts.
 *
 * Every name starts with REDIS_PREFIX, so deployments can share a Redis.
 */

/** One entity's key: `<prefix><kind>:{<entity>}` and any further parts, `:`-separated. */
export function entityKey(prefix: string, kind: string, entity: string, ...parts: (string | number)[]): string {
  return [`${prefix}${kind}:{${entity}}`, ...parts].join(':');
}

export const redisKeys = {
  /** A rate-limit tracker's window: its requests and tokens counters (one script reads both). */
  rateLimitWindow: (prefix: string, tracker: string, index: number) => ({
    requests: entityKey(prefix, 'rate-limit', tracker, index, 'requests'),
    tokens: entityKey(prefix, 'rate-limit', tracker, index, 'tokens'),
  }),
  /** A cached completion and its coalescing lock: the tag is the cache key, so both are one slot. */
  cacheValue: (prefix: string, key: string) => entityKey(prefix, 'cache', key),
  cacheLock: (prefix: string, key: string) => `${prefix}cache-lock:{${key}}`,
  /** The leases of one concurrency bound (a key's max_concurrent, an upstream's max_in_flight). */
  leases: (prefix: string, owner: string) => entityKey(prefix, 'concurrency', owner),
  /** The replica bus: one channel (PUBLISH reaches every node of a cluster) and one log per topic. */
  busChannel: (prefix: string) => `${prefix}replica-bus`,
  busLog: (prefix: string, topic: string) => `${prefix}replica-log:${topic}`,
};
