/**
 * The checks behind /readyz, run in parallel, each bounded by READINESS_TIMEOUT_MS:
 * - `database`, `redis` (only with REDIS_URL): the dependency's one health state
 *   (infra/lifecycle/dependency-health.ts), checked now with its probe (`SELECT 1`, `PING`): a
 *   failure marks it down for requests too, an answer brings it back for them, so /readyz and
 *   the request path agree (API.md "Health"). A probe still running is joined, so a hanging
 *   dependency cannot pile up probes. With READYZ_REQUIRE_REDIS=false Redis is reported but
 *   optional: the server runs degraded (per-replica limits, no shared cache) rather than
 *   leaving the load balancer.
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
import type { VerifyOutcome } from '../../infra/lifecycle/dependency-health';

export type ReadinessIndicator = () => Promise<HealthIndicatorResult>;

@Injectable()
export class ReadinessService {
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

  /** The database's one health state, checked now: what /readyz says is what requests get. */
  private async database(): Promise<HealthIndicatorResult> {
    return this.result('database', await this.db.health.verify(this.config.readinessTimeoutMs));
  }

  private async redisCheck(redis: RedisConnection): Promise<HealthIndicatorResult> {
    return this.result('redis', await redis.health.verify(this.config.readinessTimeoutMs));
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

  private result(key: string, outcome: VerifyOutcome): HealthIndicatorResult {
    const session = this.indicators.check(key);
    return outcome.up
      ? session.up({ responseTime: outcome.ms })
      : session.down({ message: outcome.reason, responseTime: outcome.ms });
  }
}
