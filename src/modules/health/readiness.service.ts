/**
 * The checks behind /readyz, run in parallel, each bounded by READINESS_TIMEOUT_MS:
 * - `database`: `SELECT 1` on the data source's pool (not gated by the database's health
 *   monitor: readiness reports what the database does now). A query that is still running is
 *   joined rather than repeated, so a hanging database cannot pile up probe queries.
 * - `redis` (only with REDIS_URL): fails at once unless the connection is ready, else `PING`.
 *   With READYZ_REQUIRE_REDIS=false it is reported but optional: the server runs degraded
 *   (per-replica limits, no shared cache) rather than leaving the load balancer.
 * - `model:<name>` for every model marked `required`: ready when at least one of its upstreams
 *   answers its cheap probe (vLLM /health, Ollama /api/tags listing the model, OpenAI-compatible
 *   /v1/models, the embedded engine loaded); the body lists each upstream by its position in
 *   models.yaml with its probe result and circuit breaker state, never its host or port.
 * Results use the Terminus indicator shape; failure reasons never contain URLs.
 */
import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import type { AppConfig } from '../../infra/config/app.config';
import { APP_CONFIG } from '../../infra/config/config.module';
import { Database } from '../../infra/database/database.service';
import { ModelRegistry, type RegisteredModel } from '../scheduling/model-registry';
import { REDIS_CONNECTION, type RedisConnection } from '../../infra/redis/redis.module';
import { BackendMonitor } from './backend-monitor';
import { boundedProbe, type ProbeOutcome } from './bounded';

export type ReadinessIndicator = () => Promise<HealthIndicatorResult>;

@Injectable()
export class ReadinessService {
  private databaseQuery: Promise<unknown> | null = null;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly db: Database,
    @Inject(REDIS_CONNECTION) private readonly redis: RedisConnection | null,
    private readonly registry: ModelRegistry,
    private readonly backends: BackendMonitor,
    private readonly indicators: HealthIndicatorService,
  ) {}

  /** The indicators readiness depends on, for HealthCheckService.check(). */
  indicatorsToRun(): ReadinessIndicator[] {
    const checks: ReadinessIndicator[] = [() => this.database()];
    if (this.redis && this.config.readyzRequireRedis) checks.push(() => this.redisCheck(this.redis!));
    for (const model of this.registry.all()) {
      if (model.config.required) checks.push(() => this.model(model));
    }
    return checks;
  }

  /** Indicators shown in the body whose failure does not make the server unready. */
  optionalIndicators(): ReadinessIndicator[] {
    return this.redis && !this.config.readyzRequireRedis ? [() => this.redisCheck(this.redis!)] : [];
  }

  private async database(): Promise<HealthIndicatorResult> {
    const outcome = await boundedProbe(this.config.readinessTimeoutMs, () => {
      this.databaseQuery ??= this.db.run('SELECT 1', []).finally(() => {
        this.databaseQuery = null;
      });
      return this.databaseQuery;
    });
    return this.result('database', outcome);
  }

  private async redisCheck(redis: RedisConnection): Promise<HealthIndicatorResult> {
    const outcome = await boundedProbe(this.config.readinessTimeoutMs, async () => {
      // A disconnected client would queue the command until it reconnects: fail fast instead.
      if (redis.client.status !== 'ready') throw new Error(`connection is ${redis.client.status}`);
      const pong = await redis.client.ping();
      if (pong !== 'PONG') throw new Error('unexpected PING answer');
    });
    return this.result('redis', outcome);
  }

  private async model({ config, providers, breakers }: RegisteredModel): Promise<HealthIndicatorResult> {
    const states = await this.backends.probeModel(config.name, providers);
    const upstreams = states.map(({ outcome }, index) => ({
      upstream: index,
      probe: outcome.up ? 'up' : `down: ${outcome.reason}`,
      breaker: breakers.get(providers[index])!.state,
    }));
    const session = this.indicators.check(`model:${config.name}`);
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
