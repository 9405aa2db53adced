/**
 * The completion cache and request coalescing (API.md "Completion cache").
 *
 * - policy(): the model's TTL (else CACHE_TTL_SECONDS; 0 disables caching and coalescing) and
 *   the request's Cache-Control: `no-cache` skips the lookup and runs its own generation (whose
 *   answer is still stored); `no-store` skips lookup and storage.
 * - lookup(): a stored answer for the canonical key, or null. Store failures count as misses.
 * - run(): for a miss, joins an identical generation already running on this replica, or
 *   starts one. Across replicas the one that takes the coalescing lock generates; the others
 *   wait for its answer to appear in the cache (never past their own deadline), then fall back
 *   to their own call. Only complete answers of the requested model itself are stored: never
 *   errors, aborted or cut-off streams, partial outputs, or answers a fallback model gave.
 */
import { Inject, Injectable } from '@nestjs/common';
import { Clock } from '../common/clock';
import type { AppConfig } from '../config/app.config';
import { APP_CONFIG } from '../config/config.module';
import type { ModelConfig } from '../config/models.types';
import { DeadlineExceeded } from '../domain/generation';
import { APP_LOGGER, type AppLogger } from '../logging/logger';
import { type CachedCompletion, CacheStore } from './cache-store';
import { CoalescingLock } from './coalescing-lock';
import { type DeltaListener, Flight, type FlightOutcome, type FlightResult, type FlightRunner } from './flight';

export interface CachePolicy {
  lookup: boolean;
  store: boolean;
  /** Join identical generations in flight (and let others join this one). */
  share: boolean;
  ttlMs: number;
}

export type CacheSource = 'miss' | 'coalesced';

export interface CacheRun {
  outcome: FlightOutcome;
  source: CacheSource;
}

const PEER_POLL_MS = 25;

function cacheControlDirectives(header: string | undefined): Set<string> {
  return new Set(
    (header ?? '')
      .split(',')
      .map((part) => part.trim().toLowerCase())
      .filter(Boolean),
  );
}

/** Waits `ms`; rejects with the signal's reason if it aborts first. */
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
    private readonly lock: CoalescingLock,
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

  /**
   * Runs (or joins) the generation for a miss. `deadlineAt` (epoch ms on the monotonic-free wall
   * clock of Date.now) bounds this request's wait for another replica's answer.
   */
  async run(
    key: string,
    model: ModelConfig,
    policy: CachePolicy,
    clientSignal: AbortSignal,
    runner: FlightRunner,
    deadlineAt: number,
    onDelta?: DeltaListener,
  ): Promise<CacheRun> {
    if (!policy.share) {
      const outcome = await new Flight(this.storing(key, model, policy, runner)).subscribe(clientSignal, onDelta);
      return { outcome, source: 'miss' };
    }
    let flight = this.flights.get(key);
    let source: CacheSource = 'coalesced';
    if (!flight || flight.abandoned) {
      source = 'miss';
      const started = new Flight(this.leading(key, model, policy, runner, deadlineAt));
      this.flights.set(key, started);
      const forget = () => this.flights.get(key) === started && this.flights.delete(key);
      started.done.then(forget, forget);
      flight = started;
    }
    const outcome = await flight.subscribe(clientSignal, onDelta);
    const fromPeer = outcome.kind === 'answer' && outcome.answer.fromPeer === true;
    return { outcome, source: fromPeer ? 'coalesced' : source };
  }

  /** The backend call, then the answer stored when it may be. */
  private storing(key: string, model: ModelConfig, policy: CachePolicy, runner: FlightRunner): FlightRunner {
    return async (signal, report) => {
      const answer = await runner(signal, report);
      if (policy.store && answer.model === model.name) await this.save(key, answer, policy.ttlMs);
      return answer;
    };
  }

  /** Across replicas: the holder of the coalescing lock generates; the others wait for its answer, within bounds. */
  private leading(
    key: string,
    model: ModelConfig,
    policy: CachePolicy,
    runner: FlightRunner,
    deadlineAt: number,
  ): FlightRunner {
    const own = this.storing(key, model, policy, runner);
    return async (signal, report) => {
      // The lock outlives the holder's call by a little, never more: its generation is bounded by timeout_ms.
      const lockMs = model.timeoutMs + 1000;
      const grant = await this.lock.acquire(key, lockMs);
      if (grant) {
        try {
          return await own(signal, report);
        } finally {
          await grant.release();
        }
      }
      const fromPeer = await this.awaitPeer(key, Math.min(Date.now() + lockMs, deadlineAt), deadlineAt, signal);
      return fromPeer ?? own(signal, report);
    };
  }

  /**
   * Polls for the answer another replica is producing: null when its lock goes (it failed or
   * gave up: generate ourselves) or after `giveUpAt`; DeadlineExceeded once this request's own
   * deadline has passed.
   */
  private async awaitPeer(
    key: string,
    giveUpAt: number,
    deadlineAt: number,
    signal: AbortSignal,
  ): Promise<FlightResult | null> {
    while (Date.now() < giveUpAt) {
      await sleep(Math.min(PEER_POLL_MS, Math.max(0, giveUpAt - Date.now())), signal);
      // Read the lock before the value: a holder stores its answer before releasing the lock.
      const held = await this.lock.isHeld(key);
      const value = await this.lookup(key);
      if (value) {
        const result = { output: value.output, finishReason: value.finishReason, usage: value.usage };
        return { model: value.model, fromPeer: true, result };
      }
      if (!held) return null;
    }
    if (Date.now() >= deadlineAt) throw new DeadlineExceeded();
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
