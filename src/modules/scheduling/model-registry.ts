/**
 * The configured models and their providers: one provider per upstream (each with its own
 * keep-alive pool and circuit breaker), built once at startup and closed at shutdown. Which
 * upstream a request uses, and when, is the scheduler's (scheduling/).
 */
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { AppConfig } from '../../infra/config/app.config';
import { APP_CONFIG } from '../../infra/config/config.module';
import type { ModelConfig } from '../../contracts/model-config';
import { APP_LOGGER, type AppLogger } from '../../infra/logging/logger';
import { LlmMetricsService } from '../../infra/metrics/llm-metrics.service';
import { type LlmProvider, PROVIDER_FACTORY, type ProviderFactory } from '../providers/provider.types';
import { type BreakerState, UpstreamBreaker } from './upstream-breaker';

export interface Candidate {
  model: ModelConfig;
  provider: LlmProvider;
  breaker: UpstreamBreaker;
}

export interface RegisteredModel {
  config: ModelConfig;
  providers: LlmProvider[];
  breakers: Map<LlmProvider, UpstreamBreaker>;
}

@Injectable()
export class ModelRegistry implements OnModuleInit, OnApplicationShutdown {
  private readonly models = new Map<string, RegisteredModel>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(PROVIDER_FACTORY) factory: ProviderFactory,
    @Inject(APP_LOGGER) private readonly logger: AppLogger,
    metrics: LlmMetricsService,
  ) {
    for (const model of config.models.models) {
      const providers =
        model.upstreams.length > 0
          ? model.upstreams.map((upstream) => factory(model, upstream))
          : [factory(model, null)];
      const breakers = new Map(
        providers.map((provider) => {
          const report = (state: BreakerState) => {
            metrics.upstreamState(model.name, provider.upstreamLabel, state);
            if (state !== 'half_open') {
              logger.warn({ model: model.name, upstream: provider.upstreamLabel, state }, 'upstream circuit breaker');
            }
          };
          metrics.upstreamState(model.name, provider.upstreamLabel, 'closed');
          // In-process engines have no upstream to skip: their failures are answers, not outages.
          const config = model.upstreams.length > 0 ? model.breaker : null;
          return [provider, new UpstreamBreaker(config, report)] as const;
        }),
      );
      this.models.set(model.name, { config: model, providers, breakers });
    }
  }

  /** In-process engines load here: a model file that cannot be loaded stops the startup. */
  async onModuleInit(): Promise<void> {
    const inits = this.all().flatMap(({ config, providers }) =>
      providers.map(async (provider) => {
        if (!provider.init) return;
        const started = Date.now();
        await provider.init();
        this.logger.info({ model: config.name, ms: Date.now() - started }, 'model loaded');
      }),
    );
    await Promise.all(inits);
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.allSettled(this.all().flatMap(({ providers }) => providers.map((provider) => provider.close())));
  }

  get defaultModel(): string {
    return this.config.models.defaultModel;
  }

  find(name: string): ModelConfig | undefined {
    return this.models.get(name)?.config;
  }

  all(): RegisteredModel[] {
    return [...this.models.values()];
  }
}
