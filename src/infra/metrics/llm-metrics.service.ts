/**
 * The LLM and limit metrics of API.md, with the small API the generation path calls. Every
 * method only increments or observes in-memory prom-client values: nothing here does I/O.
 *
 * Label values are bounded: `model` is always a configured model name (requests for unknown
 * models are rejected before any backend call), `provider` a provider kind, `upstream` a
 * host:port label, and the other labels come from fixed enums. Series for every configured
 * model and every enum value are created at startup with value 0, so dashboards and rate()
 * see them before the first request.
 *
 * What is counted where:
 * - llm_requests_total / llm_request_duration_seconds / llm_time_to_first_token_seconds /
 *   llm_tokens_total describe backend calls only: a cache hit or a coalesced waiter never
 *   reaches a backend and shows only in llm_cache_requests_total.
 * - `model` on those is the model that served (a fallback's name when a fallback answered,
 *   as in the response body), else the requested model; llm_in_flight_requests uses the
 *   requested model, which is known when the call starts.
 * - Durations are wall time on the monotonic clock (not the injectable Clock, whose fake in
 *   tests stands still). Calls the client aborted are counted but not observed: their length
 *   measures the client, not the backend.
 */
import { Inject, Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ErrorCode } from '../../contracts/app-error';
import type { AppConfig } from '../config/app.config';
import { APP_CONFIG } from '../config/config.module';
import type { ProviderKind } from '../../contracts/model-config';
import {
  CACHE_RESULTS,
  type CacheResult,
  LLM_DURATION_BUCKETS,
  LLM_OUTCOMES,
  type LlmOutcome,
  METRICS,
  PRIORITY_LABELS,
  QUEUE_WAIT_BUCKETS,
  QUOTA_TYPES,
  type QuotaType,
  SHED_REASONS,
  type ShedReason,
  RATE_LIMIT_REASONS,
  type RateLimitReason,
  TTFT_BUCKETS,
} from './metric-names';
import { METRICS_REGISTRY } from './metrics.registry';

export interface TokenCounts {
  promptTokens: number;
  completionTokens: number;
}

/** One backend generation call, from startRequest() to finish(). */
export interface LlmCallMetrics {
  /**
   * The model and provider kind that answered, when it differs from the requested one (a
   * fallback served). Call it before finish(); without it the requested model is used.
   */
  servedBy(model: string, provider: ProviderKind): void;
  /** A streamed call produced its first token: observes TTFT (only the first call counts). */
  firstToken(): void;
  /**
   * The call ended: counts it with `outcome`, observes its duration (unless aborted), adds the
   * tokens of `usage` (pass the tokens actually produced for a cut stream) and leaves the
   * in-flight gauge. Idempotent: only the first call counts.
   */
  finish(outcome: LlmOutcome, usage?: TokenCounts | null): void;
}

/** Where the scheduling gauges are read from at scrape time (scheduling/scheduler.service.ts). */
export interface SchedulingGaugeSource {
  queueLengths(): { model: string; priority: string; value: number }[];
  upstreamInFlight(): { model: string; upstream: string; value: number }[];
}

/** The outcome for an error code of a failed generation (toGenerationError's code). */
export function outcomeForErrorCode(code: ErrorCode): LlmOutcome {
  if (code === 'backend_timeout') return 'timeout';
  if (code === 'backend_unavailable') return 'unavailable';
  return 'error';
}

const UPSTREAM_STATE_VALUES = { closed: 0, half_open: 1, open: 2 } as const;

function seconds(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e9;
}

@Injectable()
export class LlmMetricsService {
  private readonly requests: Counter<'model' | 'provider' | 'outcome'>;
  private readonly duration: Histogram<'model' | 'provider'>;
  private readonly ttft: Histogram<'model' | 'provider'>;
  private readonly tokens: Counter<'model' | 'type'>;
  private readonly cache: Counter<'model' | 'result'>;
  private readonly cost: Counter<'model'>;
  private readonly budgetUsed: Gauge<'owner' | 'id' | 'name'>;
  private readonly backendUpGauge: Gauge<'model' | 'upstream'>;
  private readonly upstreamStateGauge: Gauge<'model' | 'upstream'>;
  private readonly inFlight: Gauge<'model'>;
  private readonly rateLimits: Counter<'reason'>;
  private readonly quotas: Counter<'type'>;
  private readonly queueWait: Histogram<'model' | 'priority'>;
  private readonly shed: Counter<'model' | 'reason'>;
  private schedulingSource: SchedulingGaugeSource | null = null;
  /** Told when /metrics is scraped: BudgetUpkeep reads the budgets again (it never blocks the scrape). */
  onBudgetScrape: (() => void) | null = null;

  constructor(@Inject(METRICS_REGISTRY) registry: Registry, @Inject(APP_CONFIG) config: AppConfig) {
    const registers = [registry];
    const { llmRequests, llmDuration, llmTtft, llmTokens, llmCache, llmBackendUp, llmInFlight } = METRICS;
    this.requests = new Counter({ ...meta(llmRequests), registers });
    this.duration = new Histogram({ ...meta(llmDuration), buckets: LLM_DURATION_BUCKETS, registers });
    this.ttft = new Histogram({ ...meta(llmTtft), buckets: TTFT_BUCKETS, registers });
    this.tokens = new Counter({ ...meta(llmTokens), registers });
    this.cache = new Counter({ ...meta(llmCache), registers });
    this.cost = new Counter({ ...meta(METRICS.llmCost), registers });
    // Set from the database in the background; a scrape asks for a fresh read for the next one.
    const budgetScraped = () => this.onBudgetScrape?.();
    this.budgetUsed = new Gauge({
      ...meta(METRICS.budgetUsed),
      registers,
      collect() {
        budgetScraped();
      },
    });
    this.backendUpGauge = new Gauge({ ...meta(llmBackendUp), registers });
    this.upstreamStateGauge = new Gauge({ ...meta(METRICS.llmUpstreamState), registers });
    this.inFlight = new Gauge({ ...meta(llmInFlight), registers });
    this.rateLimits = new Counter({ ...meta(METRICS.rateLimitRejections), registers });
    this.quotas = new Counter({ ...meta(METRICS.quotaRejections), registers });
    this.queueWait = new Histogram({ ...meta(METRICS.queueWait), buckets: QUEUE_WAIT_BUCKETS, registers });
    this.shed = new Counter({ ...meta(METRICS.requestsShed), registers });
    // Gauges of the scheduler's state, read when /metrics is scraped: the request path only
    // moves plain counters (see scheduling/).
    const source = () => this.schedulingSource;
    new Gauge({
      ...meta(METRICS.queueLength),
      registers,
      collect() {
        this.reset();
        for (const { model, priority, value } of source()?.queueLengths() ?? []) this.set({ model, priority }, value);
      },
    });
    new Gauge({
      ...meta(METRICS.upstreamInFlight),
      registers,
      collect() {
        this.reset();
        for (const { model, upstream, value } of source()?.upstreamInFlight() ?? [])
          this.set({ model, upstream }, value);
      },
    });

    for (const model of config.models.models) {
      for (const outcome of LLM_OUTCOMES)
        this.requests.inc({ model: model.name, provider: model.provider, outcome }, 0);
      this.duration.zero({ model: model.name, provider: model.provider });
      this.ttft.zero({ model: model.name, provider: model.provider });
      for (const type of ['prompt', 'completion']) this.tokens.inc({ model: model.name, type }, 0);
      for (const result of CACHE_RESULTS) this.cache.inc({ model: model.name, result }, 0);
      this.cost.inc({ model: model.name }, 0);
      this.inFlight.set({ model: model.name }, 0);
      for (const reason of SHED_REASONS) this.shed.inc({ model: model.name, reason }, 0);
      for (const priority of PRIORITY_LABELS) this.queueWait.zero({ model: model.name, priority });
    }
    for (const reason of RATE_LIMIT_REASONS) this.rateLimits.inc({ reason }, 0);
    for (const type of QUOTA_TYPES) this.quotas.inc({ type }, 0);
  }

  /** A backend call starts for `model` (the requested model) whose provider kind is `provider`. */
  startRequest(model: string, provider: ProviderKind): LlmCallMetrics {
    const startedAt = process.hrtime.bigint();
    const requested = model;
    let served = { model, provider };
    let firstTokenSeen = false;
    let finished = false;
    this.inFlight.inc({ model: requested });
    return {
      servedBy: (servedModel, servedProvider) => {
        served = { model: servedModel, provider: servedProvider };
      },
      firstToken: () => {
        if (firstTokenSeen || finished) return;
        firstTokenSeen = true;
        this.ttft.observe(served, seconds(startedAt));
      },
      finish: (outcome, usage) => {
        if (finished) return;
        finished = true;
        this.inFlight.dec({ model: requested });
        this.requests.inc({ ...served, outcome });
        if (outcome !== 'aborted') this.duration.observe(served, seconds(startedAt));
        if (usage) {
          if (usage.promptTokens > 0) this.tokens.inc({ model: served.model, type: 'prompt' }, usage.promptTokens);
          if (usage.completionTokens > 0) {
            this.tokens.inc({ model: served.model, type: 'completion' }, usage.completionTokens);
          }
        }
      },
    };
  }

  /** One completion-cache lookup for `model` (call only when a lookup happened). */
  cacheResult(model: string, result: CacheResult): void {
    this.cache.inc({ model, result });
  }

  /** A request was answered 429. */
  rateLimitRejected(reason: RateLimitReason): void {
    this.rateLimits.inc({ reason });
  }

  /** Spend charged for a request answered by `model`, in CURRENCY. */
  costCharged(model: string, amount: number): void {
    if (amount > 0) this.cost.inc({ model }, amount);
  }

  /** The budgets' state, as read from the database (BudgetGauges): replaces what was there. */
  budgetsUsed(budgets: { owner: string; id: string; name: string; ratio: number }[]): void {
    this.budgetUsed.reset();
    for (const { owner, id, name, ratio } of budgets) this.budgetUsed.set({ owner, id, name }, ratio);
  }

  /** A generation was answered 402. */
  quotaRejected(type: QuotaType): void {
    this.quotas.inc({ type });
  }

  /** Where llm_queue_length and llm_upstream_in_flight are read from. */
  scheduling(source: SchedulingGaugeSource): void {
    this.schedulingSource = source;
  }

  /** A request was admitted after `seconds` in its model's queue. */
  queueWaited(model: string, priority: string, seconds: number): void {
    this.queueWait.observe({ model, priority }, seconds);
  }

  /** A request was answered 503 overloaded. */
  requestShed(model: string, reason: ShedReason): void {
    this.shed.inc({ model, reason });
  }

  /** An upstream's circuit breaker changed (see generation/upstream-breaker.ts). */
  upstreamState(model: string, upstream: string, state: 'closed' | 'half_open' | 'open'): void {
    this.upstreamStateGauge.set({ model, upstream }, UPSTREAM_STATE_VALUES[state]);
  }

  /** The last readiness probe of one upstream of a model (see health/backend-monitor.ts). */
  backendUp(model: string, upstream: string, up: boolean): void {
    this.backendUpGauge.set({ model, upstream }, up ? 1 : 0);
  }
}

function meta(definition: { name: string; help: string; labels: readonly string[] }) {
  return { name: definition.name, help: definition.help, labelNames: [...definition.labels] };
}
