/**
 * The completion cache and request coalescing (API.md "Completion cache").
 *
 * - policy(): the model's TTL (else CACHE_TTL_SECONDS; 0 disables caching and coalescing) and
 *   the request's Cache-Control: `no-cache` skips the lookup and runs its own generation (whose
 *   answer is still stored); `no-store` skips lookup and storage.
 * - lookup(): a stored answer for the canonical key, or null. Store failures count as misses.
 * - run(): for a miss, joins an identical generation already running on this replica, or
 *   starts one. With Redis, the replica that starts it first takes a short lock; the others
 *   wait (bounded) for its answer to appear in the cache, then fall back to their own call.
 *   Only complete answers of the requested model itself are stored: never errors, aborted or
 *   cut-off streams, partial outputs, or answers a fallback model gave.
 */
import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type Redis from 'ioredis';
import { Clock } from '../common/clock';
import type { AppConfig } from '../config/app.config';
import { APP_CONFIG } from '../config/config.module';
import type { ModelConfig } from '../config/models.types';
import { APP_LOGGER, type AppLogger } from '../logging/logger';
import { REDIS } from '../redis/redis.module';
import { RedisScript } from '../rate-limit/redis-script';
import { type CachedCompletion, CacheStore } from './cache-store';
import { type DeltaListener, Flight, type FlightResult, type FlightRunner } from './flight';

export interface CachePolicy {
  lookup: boolean;
  store: boolean;
  /** Join identical generations in flight (and let others join this one). */
  share: boolean;
  ttlMs: number;
}

export type CacheSource = 'miss' | 'coalesced';

const PEER_POLL_MS = 25;
/** Releases the coalescing lock only if this replica still holds it. */
const releaseLock = new RedisScript(
  `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
);

function cacheControlDirectives(header: string | undefined): Set<string> {
  return new Set(
    (header ?? '')
      .split(',')
      .map((part) => part.trim().toLowerCase())
      .filter(Boolean),
  );
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

@Injectable()
export class CompletionCache {
  private readonly flights = new Map<string, Flight>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly store: CacheStore,
    @Inject(REDIS) private readonly redis: Redis | null,
    private readonly clock: Clock,
    @Inject(APP_LOGGER) private readonly logger: AppLogger,
  ) {}

  policy(model: ModelConfig, cacheControl: string | undefined): CachePolicy {
    const ttlSeconds = model.cacheTtlSeconds ?? this.config.cacheTtlSeconds;
    const directives = cacheControlDirectives(cacheControl);
    if (ttlSeconds === 0 || directives.has('no-store')) return { lookup: false, store: false, share: false, ttlMs: 0 };
    const fresh = directives.has('no-cache');
    return { lookup: !fresh, store: true, share: !fresh, ttlMs: ttlSeconds * 1000 };
  }

  async lookup(key: string): Promise<CachedCompletion | null> {
    try {
      return await this.store.get(key, this.clock.now().getTime());
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'cache lookup failed; treating as a miss');
      return null;
    }
  }

  async run(
    key: string,
    model: ModelConfig,
    policy: CachePolicy,
    clientSignal: AbortSignal,
    runner: FlightRunner,
    onDelta?: DeltaListener,
    /** Called at once when this request joins a generation already running here. */
    onJoined?: () => void,
  ): Promise<{ answer: FlightResult; source: CacheSource }> {
    if (!policy.share) {
      const answer = await new Flight(this.storing(key, model, policy, runner)).subscribe(clientSignal, onDelta);
      return { answer, source: 'miss' };
    }
    let flight = this.flights.get(key);
    let source: CacheSource = 'coalesced';
    if (!flight || flight.abandoned) {
      source = 'miss';
      const started = new Flight(this.leading(key, model, policy, runner));
      this.flights.set(key, started);
      const forget = () => this.flights.get(key) === started && this.flights.delete(key);
      started.done.then(forget, forget);
      flight = started;
    } else {
      onJoined?.();
    }
    const answer = await flight.subscribe(clientSignal, onDelta);
    return { answer, source: answer.fromPeer ? 'coalesced' : source };
  }

  /** The backend call, then the answer stored when it may be. */
  private storing(key: string, model: ModelConfig, policy: CachePolicy, runner: FlightRunner): FlightRunner {
    return async (signal, emit) => {
      const answer = await runner(signal, emit);
      if (policy.store && answer.model === model.name) await this.save(key, answer, policy.ttlMs);
      return answer;
    };
  }

  /** With Redis: one replica generates; the others wait for its answer, within a bound. */
  private leading(key: string, model: ModelConfig, policy: CachePolicy, runner: FlightRunner): FlightRunner {
    const own = this.storing(key, model, policy, runner);
    if (!this.redis) return own;
    const redis = this.redis;
    return async (signal, emit) => {
      const lockKey = `${this.config.redisPrefix}cache-lock:${key}`;
      const token = randomBytes(8).toString('hex');
      // The lock outlives the leader's call by a little, never more: its generation is bounded by timeout_ms.
      const lockMs = model.timeoutMs + 1000;
      const acquired = await redis.set(lockKey, token, 'PX', lockMs, 'NX').catch(() => 'OK');
      if (acquired === 'OK') {
        try {
          return await own(signal, emit);
        } finally {
          await releaseLock.run(redis, [lockKey], [token]).catch(() => undefined);
        }
      }
      const fromPeer = await this.awaitPeer(key, lockKey, lockMs, signal);
      return fromPeer ?? own(signal, emit);
    };
  }

  /** Polls for the answer another replica is producing; null when its lock goes or the bound passes. */
  private async awaitPeer(
    key: string,
    lockKey: string,
    boundMs: number,
    signal: AbortSignal,
  ): Promise<FlightResult | null> {
    const giveUpAt = Date.now() + boundMs;
    while (Date.now() < giveUpAt) {
      await sleep(PEER_POLL_MS, signal);
      // Read the lock before the value: a leader stores its answer before releasing the lock.
      const held = await this.redis!.exists(lockKey).catch(() => 0);
      const value = await this.lookup(key);
      if (value) {
        const result = { output: value.output, finishReason: value.finishReason, usage: value.usage };
        return { model: value.model, fromPeer: true, result };
      }
      if (!held) return null; // the leader failed or gave up: generate ourselves
    }
    return null;
  }

  private async save(key: string, answer: FlightResult, ttlMs: number): Promise<void> {
    const now = this.clock.now().getTime();
    const value: CachedCompletion = {
      output: answer.result.output,
      finishReason: answer.result.finishReason,
      usage: answer.result.usage,
      model: answer.model,
      expiresAtMs: now + ttlMs,
    };
    try {
      await this.store.set(key, value, now);
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'cache store failed; the answer is served uncached');
    }
  }
}
