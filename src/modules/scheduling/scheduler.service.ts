/**
 * The schedulers of every configured model (model-scheduler.ts), built once from the model
 * registry, and the scrapes of vLLM /metrics for models with `upstream_metrics: true`. Exposes
 * the queue and in-flight gauges to the metrics registry, read at scrape time only, so the
 * request path updates plain counters and nothing else.
 */
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { ModelConfig } from '../../contracts/model-config';
import type { GenerationParams } from '../../contracts/generation';
import type { SchedulingClass } from '../../contracts/scheduling';
import { ModelRegistry } from './model-registry';
import { APP_LOGGER, type AppLogger } from '../../infra/logging/logger';
import { LlmMetricsService } from '../../infra/metrics/llm-metrics.service';
import { PRIORITIES } from '../../contracts/scheduling';
import { type Admission, ModelScheduler } from './model-scheduler';
import { SCRAPE_INTERVAL_MS, scrapeVllm } from './upstream-metrics';
import { UpstreamSlot } from './upstream-slot';
import { UpstreamLeases } from './upstream-leases';
import { REDIS_CONNECTION, type RedisConnection } from '../../infra/redis/redis.module';
import { ConcurrencyLeases } from '../../stores/concurrency/concurrency-leases';

@Injectable()
export class Scheduler implements OnModuleInit, OnApplicationShutdown {
  private readonly schedulers = new Map<string, ModelScheduler>();
  private scrapeTimer: NodeJS.Timeout | null = null;
  private readonly scrapes = new AbortController();

  constructor(
    registry: ModelRegistry,
    metrics: LlmMetricsService,
    @Inject(APP_LOGGER) private readonly logger: AppLogger,
    @Inject(REDIS_CONNECTION) redis: RedisConnection | null,
    leases: ConcurrencyLeases,
  ) {
    // With Redis, max_in_flight holds across replicas (upstream-leases.ts).
    const shared = redis ? new UpstreamLeases(leases) : null;
    const events = {
      waited: metrics.queueWaited.bind(metrics),
      shed: metrics.requestShed.bind(metrics),
    };
    const lookup = (name: string) => this.schedulers.get(name);
    for (const { config, providers, breakers } of registry.all()) {
      const slots = providers.map((provider, i) => {
        const upstream = config.upstreams[i];
        const candidate = { model: config, provider, breaker: breakers.get(provider)! };
        return new UpstreamSlot(candidate, upstream?.weight ?? 1, upstream?.maxInFlight ?? Infinity);
      });
      this.schedulers.set(config.name, new ModelScheduler(config, slots, events, lookup, shared));
    }
    metrics.scheduling({
      queueLengths: () =>
        [...this.schedulers.values()].flatMap((scheduler) =>
          PRIORITIES.map((priority) => ({
            model: scheduler.model.name,
            priority,
            value: scheduler.queuedOf(priority),
          })),
        ),
      upstreamInFlight: () =>
        [...this.schedulers.values()].flatMap((scheduler) =>
          scheduler.slots.map((slot) => ({ model: scheduler.model.name, upstream: slot.label, value: slot.inFlight })),
        ),
    });
  }

  /** See ModelScheduler.admit. */
  admit(
    model: ModelConfig,
    cls: SchedulingClass,
    params: GenerationParams,
    signal: AbortSignal,
  ): Admission | Promise<Admission> {
    return this.schedulers.get(model.name)!.admit(cls, params, signal);
  }

  /** Requests waiting in `model`'s queue now. */
  queued(model: string): number {
    return this.schedulers.get(model)?.queued ?? 0;
  }

  onModuleInit(): void {
    const scraped = [...this.schedulers.values()]
      .filter((scheduler) => scheduler.model.upstreamMetrics)
      .flatMap((scheduler) => scheduler.slots.map((slot, i) => ({ slot, url: scheduler.model.upstreams[i].baseUrl })));
    if (scraped.length === 0) return;
    let running = false;
    this.scrapeTimer = setInterval(() => {
      if (running) return; // a slow endpoint never stacks scrapes
      running = true;
      void Promise.all(
        scraped.map(async ({ slot, url }) => {
          const load = await scrapeVllm(url, this.scrapes.signal);
          if (load) slot.engine = load;
        }),
      ).finally(() => {
        running = false;
      });
    }, SCRAPE_INTERVAL_MS);
    this.scrapeTimer.unref();
    this.logger.info({ upstreams: scraped.length }, 'reading vLLM /metrics of upstreams every second');
  }

  onApplicationShutdown(): void {
    if (this.scrapeTimer) clearInterval(this.scrapeTimer);
    this.scrapes.abort();
  }
}
