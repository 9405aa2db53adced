/**
 * The completion cache and request coalescing (API.md "Completion cache").
 *
 * - policy(): the model's TTL (else CACHE_TTL_SECONDS; 0 disables caching and coalescing) and
 *   the request's Cache-Control: `no-cache` skips the lookup and runs its own generation (whose
 *   answer is still stored); `no-store` skips lookup and storage.
 * - serve(): answers one request. An identical request already running on this replica is
 *   joined at once (no store round trip); otherwise one store call looks the answer up and, on a
 *   miss, claims the right to generate it: the holder generates (then stores its answer and gives
 *   the claim back in one more call, without the client waiting for it), and another replica's
 *   requests wait for the holder's answer to appear (never past their own deadline), then
 *   generate themselves if it does not. Requests joining a lookup share its answer too.
 * Only complete answers of the requested model itself are stored: never errors, aborted or
 * cut-off streams, partial outputs, or answers a fallback model gave.
 */
import { Inject, Injectable, Optional } from '@nestjs/common';
import { Clock } from '../../contracts/clock';
import type { AppConfig } from '../../infra/config/app.config';
import { APP_CONFIG } from '../../infra/config/config.module';
import type { ModelConfig } from '../../contracts/model-config';
import { DeadlineExceeded } from '../../contracts/generation';
import { APP_LOGGER, type AppLogger } from '../../infra/logging/logger';
import { SPANS } from '../../infra/tracing/trace-attributes';
import { NoopTracing, Tracing } from '../../infra/tracing/tracing';
import { type CachedCompletion, CacheStore, type Claim } from '../../stores/cache/cache-store';
import type { DeltaListener, FlightResult, FlightRunner } from '../../contracts/flight';
import { Flight, type FlightOutcome } from './flight';
import { sleep } from '../../contracts/sleep';

export interface CachePolicy {
  lookup: boolean;
  store: boolean;
  /** Join identical generations in flight (and let others join this one). */
  share: boolean;
  ttlMs: number;
}

/** How the answer was found: in the cache, by joining a running generation, or by generating. */
export type CacheSource = 'hit' | 'miss' | 'coalesced';

export interface CacheRun {
  outcome: FlightOutcome;
  source: CacheSource;
}

const PEER_POLL_MS = 25;
/**
 * A coalescing claim lasts `ttlMs` unless its holder renews it: a holder that crashed lets the
 * others generate after that. A live holder renews it every `renewMs` for as long as it waits
 * its turn and generates, so no other replica generates the same answer meanwhile.
 */
export const CLAIM_TIMING = { ttlMs: 10_000, renewMs: 3_000 };
/** Tests shorten the claim's timing with this token. */
export const CLAIM_TIMING_TOKEN = Symbol('CLAIM_TIMING');

function cacheControlDirectives(header: string | undefined): Set<string> {
  return new Set(
    (header ?? '')
      .split(',')
      .map((part) => part.trim().toLowerCase())
      .filter(Boolean),
  );
}

function fromStore(value: CachedCompletion, source: 'cache' | 'peer'): FlightResult {
  const { output, finishReason, usage, toolCalls, reasoning, stopSequence, embeddings } = value;
  const result = {
    output,
    finishReason,
    usage,
    ...(toolCalls ? { toolCalls } : {}),
    ...(reasoning ? { reasoning } : {}),
    ...(stopSequence ? { stopSequence } : {}),
    ...(embeddings ? { embeddings } : {}),
  };
  return { model: value.model, result, ...(source === 'cache' ? { fromCache: true } : { fromPeer: true }) };
}

@Injectable()
export class CompletionCache {
  private readonly flights = new Map<string, Flight>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly store: CacheStore,
    private readonly clock: Clock,
    @Inject(APP_LOGGER) private readonly logger: AppLogger,
    private readonly tracing: Tracing = new NoopTracing(),
    @Optional() @Inject(CLAIM_TIMING_TOKEN) private readonly claimTiming: typeof CLAIM_TIMING = CLAIM_TIMING,
  ) {}

  policy(model: ModelConfig, cacheControl: string | undefined): CachePolicy {
    const ttlSeconds = model.cacheTtlSeconds ?? this.config.cacheTtlSeconds;
    const directives = cacheControlDirectives(cacheControl);
    if (ttlSeconds === 0 || directives.has('no-store')) return { lookup: false, store: false, share: false, ttlMs: 0 };
    const fresh = directives.has('no-cache');
    return { lookup: !fresh, store: true, share: !fresh, ttlMs: ttlSeconds * 1000 };
  }

  /** The stored answer for `key`, or null. Store failures count as misses. */
  async lookup(key: string): Promise<CachedCompletion | null> {
    try {
      return await this.store.get(key, this.clock.now().getTime());
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'cache lookup failed; treating as a miss');
      return null;
    }
  }

  /**
   * Answers one request: from the cache, from an identical generation (here or on another
   * replica), or from `runner`. `deadlineAt` (epoch ms) bounds this request's wait for another
   * replica's answer.
   */
  async serve(
    key: string,
    model: ModelConfig,
    policy: CachePolicy,
    clientSignal: AbortSignal,
    runner: FlightRunner,
    deadlineAt: number,
    onDelta?: DeltaListener,
    /**
     * `joined`: this request joins a generation already running (it then waits on the backend);
     * `admitted`: the generation it follows got its turn (see FlightReporter.admitted).
     */
    hooks: { joined?: () => void; admitted?: () => void } = {},
  ): Promise<CacheRun> {
    if (!policy.share) {
      const flight = new Flight(this.storing(key, model, policy, runner, null));
      const outcome = await flight.subscribe(clientSignal, onDelta, hooks.admitted);
      return { outcome, source: 'miss' };
    }
    let flight = this.flights.get(key);
    const joined = flight !== undefined && !flight.abandoned;
    if (joined) hooks.joined?.();
    else {
      const started = new Flight(this.leading(key, model, policy, runner, deadlineAt));
      this.flights.set(key, started);
      const forget = () => this.flights.get(key) === started && this.flights.delete(key);
      started.done.then(forget, forget);
      flight = started;
    }
    const outcome = await flight!.subscribe(clientSignal, onDelta, hooks.admitted);
    if (outcome.kind === 'answer' && outcome.answer.fromCache) return { outcome, source: 'hit' };
    const fromPeer = outcome.kind === 'answer' && outcome.answer.fromPeer === true;
    return { outcome, source: joined || fromPeer ? 'coalesced' : 'miss' };
  }

  /** The backend call, then its answer stored (when it may be) and the claim given back, unawaited. */
  private storing(
    key: string,
    model: ModelConfig,
    policy: CachePolicy,
    runner: FlightRunner,
    claim: Claim | null,
  ): FlightRunner {
    return async (signal, report) => {
      let answer: FlightResult | null = null;
      const renewal = claim?.token ? setInterval(() => this.renew(key, claim), this.claimTiming.renewMs) : null;
      try {
        answer = await runner(signal, report);
        return answer;
      } finally {
        if (renewal) clearInterval(renewal);
        const storable = answer !== null && policy.store && answer.model === model.name;
        if (storable || claim?.token) {
          const now = this.clock.now().getTime();
          const value = storable ? this.toStored(answer!, now, policy.ttlMs) : null;
          // Not awaited: the client need not wait for it. The store's connection keeps command
          // order, so a lookup sent after this sees the answer.
          void this.store.storeAndRelease(key, value, now, claim).catch((error: unknown) => {
            this.logger.warn({ err: (error as Error).message }, 'cache store failed; the answer is served uncached');
          });
        }
      }
    };
  }

  private renew(key: string, claim: Claim): void {
    this.store.renewClaim(key, claim, this.claimTiming.ttlMs).catch((error: unknown) => {
      this.logger.warn({ err: (error as Error).message }, 'could not renew a coalescing claim');
    });
  }

  /** One store call: the cached answer, or the claim to generate it, or another replica's answer to wait for. */
  private leading(
    key: string,
    model: ModelConfig,
    policy: CachePolicy,
    runner: FlightRunner,
    deadlineAt: number,
  ): FlightRunner {
    return async (signal, report) => {
      const found = await this.tracing.span(SPANS.cacheLookup, {}, () =>
        this.store
          .lookupOrClaim(key, this.clock.now().getTime(), policy.lookup ? this.claimTiming.ttlMs : null)
          .catch(() => ({ claim: null })),
      );
      if ('hit' in found) return fromStore(found.hit, 'cache');
      if ('claim' in found) return this.storing(key, model, policy, runner, found.claim)(signal, report);
      report.admitted(); // waiting on a generation under way elsewhere, not in a queue here
      const fromPeer = await this.awaitPeer(key, deadlineAt, signal);
      return fromPeer ?? this.storing(key, model, policy, runner, null)(signal, report);
    };
  }

  /**
   * Polls for the answer another replica is producing: null when its claim goes (it failed, gave
   * up or crashed: generate ourselves); DeadlineExceeded once this request's own deadline (the
   * longest its own generation could take) has passed.
   */
  private async awaitPeer(key: string, deadlineAt: number, signal: AbortSignal): Promise<FlightResult | null> {
    while (Date.now() < deadlineAt) {
      await sleep(Math.min(PEER_POLL_MS, Math.max(0, deadlineAt - Date.now())), signal);
      // Read the claim before the value: a holder stores its answer before releasing the claim.
      const held = await this.store.isClaimed(key);
      const value = await this.lookup(key);
      if (value) return fromStore(value, 'peer');
      if (!held) return null;
    }
    throw new DeadlineExceeded();
  }

  private toStored(answer: FlightResult, now: number, ttlMs: number): CachedCompletion {
    const { output, finishReason, usage, toolCalls, reasoning, stopSequence, embeddings } = answer.result;
    return {
      output,
      finishReason,
      usage,
      model: answer.model,
      expiresAtMs: now + ttlMs,
      ...(toolCalls?.length ? { toolCalls } : {}),
      ...(reasoning ? { reasoning } : {}),
      ...(stopSequence ? { stopSequence } : {}),
      ...(embeddings ? { embeddings } : {}),
    };
  }
}
