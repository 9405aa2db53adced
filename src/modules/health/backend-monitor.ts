/**
 * Probes model upstreams with their cheap readiness endpoints (never a generation) and keeps
 * the last result of each in `llm_backend_up{model,upstream}`.
 *
 * Two sources refresh the gauge: every /readyz call (the upstreams of required models), and,
 * when BACKEND_PROBE_INTERVAL_MS > 0, a background round over every model's upstreams, so
 * dashboards also see models readiness does not depend on. Rounds never overlap, their timer
 * is unref'd, and they stop when shutdown begins. Generation results do not move the gauge:
 * one failed generation does not mean a backend is down (llm_requests_total shows failures).
 */
import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { AppConfig } from '../../infra/config/app.config';
import { APP_CONFIG } from '../../infra/config/config.module';
import { ModelRegistry } from '../scheduling/model-registry';
import type { LlmProvider } from '../providers/provider.types';
import { APP_LOGGER, type AppLogger } from '../../infra/logging/logger';
import { LlmMetricsService } from '../../infra/metrics/llm-metrics.service';
import { boundedProbe, type ProbeOutcome } from './bounded';
import { ShutdownState } from '../../infra/lifecycle/shutdown-state';

export interface UpstreamState {
  upstream: string;
  outcome: ProbeOutcome;
}

@Injectable()
export class BackendMonitor implements OnApplicationBootstrap, OnModuleDestroy {
  private timer: NodeJS.Timeout | null = null;
  private round: Promise<void> | null = null;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly registry: ModelRegistry,
    private readonly metrics: LlmMetricsService,
    private readonly shutdown: ShutdownState,
    @Inject(APP_LOGGER) private readonly logger: AppLogger,
  ) {}

  onApplicationBootstrap(): void {
    const interval = this.config.backendProbeIntervalMs;
    if (interval <= 0) return;
    void this.probeAllOnce();
    this.timer = setInterval(() => void this.probeAllOnce(), interval);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    this.stop();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Probes every upstream of `model` in parallel, each bounded by READINESS_TIMEOUT_MS. */
  async probeModel(model: string, providers: LlmProvider[]): Promise<UpstreamState[]> {
    return Promise.all(
      providers.map(async (provider) => {
        const outcome = await boundedProbe(this.config.readinessTimeoutMs, (signal) => provider.checkReady(signal));
        this.metrics.backendUp(model, provider.upstreamLabel, outcome.up);
        return { upstream: provider.upstreamLabel, outcome };
      }),
    );
  }

  /** One background round; skipped while the previous one runs or once shutdown began. */
  probeAllOnce(): Promise<void> {
    if (this.shutdown.shuttingDown) {
      this.stop();
      return Promise.resolve();
    }
    this.round ??= Promise.all(
      this.registry.all().map(({ config, providers }) => this.probeModel(config.name, providers)),
    )
      .then(() => undefined)
      .catch((error: unknown) => this.logger.warn({ err: error }, 'backend probe round failed'))
      .finally(() => {
        this.round = null;
      });
    return this.round;
  }
}
