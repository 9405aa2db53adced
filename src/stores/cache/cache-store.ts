/**
 * Where completed generations are kept, and who generates an answer nobody has yet: a port with
 * two implementations, picked once by StoresModule.
 * - MemoryCacheStore (no Redis): a bounded in-process LRU; every claim is granted (identical
 *   requests still share one generation within this process: CompletionCache's flights).
 * - RedisCacheStore: the cache shared by replicas, and the coalescing lock that lets one replica
 *   generate while the others wait for its answer. The lookup and the claim are one Lua script,
 *   and so are the store and the release: a cache miss costs two Redis commands, a hit one. While
 *   Redis is down NoCacheStore answers instead: the cache is skipped and claims are granted
 *   locally (see no-cache-store.ts).
 * Values carry their own expiry, read against the injected clock, so both stores expire entries
 * the same way (and tests can move time); Redis also expires them itself so nothing lingers.
 */
import type { FinishReason, TokenUsage, ToolCall } from '../../contracts/generation';

export interface CachedCompletion {
  output: string;
  finishReason: FinishReason;
  /** The usage of the generation that produced it (answers from the cache report zero). */
  usage: TokenUsage;
  /** The model that produced it. */
  model: string;
  /** The calls the model made, when it made any. */
  toolCalls?: ToolCall[];
  /** Reasoning text the backend returned apart from the answer. */
  reasoning?: string;
  /** The stop string that ended the output, when the backend said which. */
  stopSequence?: string;
  /** An embedding request's vectors. */
  embeddings?: number[][];
  /** Epoch milliseconds after which the entry is stale. */
  expiresAtMs: number;
}

/** The right to generate an answer others may wait for. */
export interface Claim {
  /** The claim's token in the shared store (null: granted locally, nothing to release). */
  readonly token: string | null;
}

export const LOCAL_CLAIM: Claim = { token: null };

/**
 * A lookup's result: the stored answer, or the claim to generate it, or neither (another replica
 * holds the claim: wait for its answer).
 */
export type LookupResult = { hit: CachedCompletion } | { claim: Claim } | { heldElsewhere: true };

export abstract class CacheStore {
  /** The stored answer, if fresh. */
  abstract get(key: string, nowMs: number): Promise<CachedCompletion | null>;

  /** The stored answer; else, with `claimMs`, the claim for `claimMs` if nobody holds it. */
  abstract lookupOrClaim(key: string, nowMs: number, claimMs: number | null): Promise<LookupResult>;

  /** Stores `value` (unless null) and gives the claim back. Never rejects. */
  abstract storeAndRelease(
    key: string,
    value: CachedCompletion | null,
    nowMs: number,
    claim: Claim | null,
  ): Promise<void>;

  /** Extends `claim` (if still held) to `claimMs` from now: its holder is still waiting or generating. */
  abstract renewClaim(key: string, claim: Claim, claimMs: number): Promise<void>;

  /** Whether some replica still holds the key's claim (false when unknown). */
  abstract isClaimed(key: string): Promise<boolean>;
}
