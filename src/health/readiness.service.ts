/**
 * The checks behind /readyz, run in parallel, each bounded by READINESS_TIMEOUT_MS:
 * - `database`: `SELECT 1` through the app's DataSource. A query that is still running is
 *   joined rather than repeated, so a hanging database cannot pile up probe queries.
 * - `redis` (only with REDIS_URL): fails at once unless the connection is ready, else `PING`.
 * - `model:<name>` for every model marked `required`: ready when at least one of its upstreams
 *   answers its cheap probe (vLLM /health, Ollama /api/tags listing the model, OpenAI-compatible
 *   /v1/models, the embedded engine loaded); the body lists each upstream's state.
 * Results use the Terminus indicator shape; failure reasons never contain URLs.
 */
import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { InjectDataSource } from '@nestjs/typeorm';
import type Redis from 'ioredis';
import { DataSource } from 'typeorm';
import type { AppConfig } from '../config/app.config';
import { APP_CONFIG } from '../config/config.module';
import { ModelRegistry } from '../generation/model-registry';
import { REDIS } from '../redis/redis.module';
import { BackendMonitor } from './backend-monitor';
import { boundedProbe, type ProbeOutcome } from './bounded';

export type ReadinessIndicator = () => Promise<HealthIndicatorResult>;

@Injectable()
export class ReadinessService {
  private databaseQuery: Promise<unknown> | null = null;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(REDIS) private readonly redis: Redis | null,
    private readonly registry: ModelRegistry,
    private readonly backends: BackendMonitor,
    private readonly indicators: HealthIndicatorService,
  ) {}

  /** The indicators of one /readyz call, for HealthCheckService.check(). */
  indicatorsToRun(): ReadinessIndicator[] {
    const checks: ReadinessIndicator[] = [() => this.database()];
    if (this.redis) checks.push(() => this.redisCheck(this.redis!));
    for (const { config, providers } of this.registry.all()) {
      if (config.required) checks.push(() => this.model(config.name, providers));
    }
    return checks;
  }

  private async database(): Promise<HealthIndicatorResult> {
    const outcome = await boundedProbe(this.config.readinessTimeoutMs, () => {
      this.databaseQuery ??= this.dataSource.query('SELECT 1').finally(() => {
        this.databaseQuery = null;
      });
      return this.databaseQuery;
    });
    return this.result('database', outcome);
  }

  private async redisCheck(redis: Redis): Promise<HealthIndicatorResult> {
    const outcome = await boundedProbe(this.config.readinessTimeoutMs, async () => {
      // A disconnected client would queue the command until it reconnects: fail fast instead.
      if (redis.status !== 'ready') throw new Error(`connection is ${redis.status}`);
      const pong = await redis.ping();
      if (pong !== 'PONG') throw new Error('unexpected PING answer');
    });
    return this.result('redis', outcome);
  }

  private async model(
    name: string,
    providers: Parameters<BackendMonitor['probeModel']>[1],
  ): Promise<HealthIndicatorResult> {
    const states = await this.backends.probeModel(name, providers);
    const upstreams = Object.fromEntries(
      states.map(({ upstream, outcome }) => [upstream, outcome.up ? 'up' : `down: ${outcome.reason}`]),
    );
    const session = this.indicators.check(`model:${name}`);
    return states.some(({ outcome }) => outcome.up)
      ? session.up({ upstreams })
      : session.down({ message: 'no upstream is ready', upstreams });
  }

  private result(key: string, outcome: ProbeOutcome): HealthIndicatorResult {
    const session = this.indicators.check(key);
    return outcome.up
      ? session.up({ responseTime: outcome.ms })
      : session.down({ message: outcome.reason, responseTime: outcome.ms });
  }
}
