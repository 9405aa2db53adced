/**
 * The model registry as the admin sees it (GET /admin/models): each model's settings and the
 * state of each of its upstreams, probed now through BackendMonitor (the cheap health endpoints
 * /readyz uses, in parallel, each bounded by READINESS_TIMEOUT_MS). Admin-only because it names
 * upstream hosts (`host:port`, never a URL or an API key).
 */
import { Inject, Injectable } from '@nestjs/common';
import { Clock } from '../../contracts/clock';
import type { ModelConfig } from '../../contracts/model-config';
import type { AppConfig } from '../../infra/config/app.config';
import { APP_CONFIG } from '../../infra/config/config.module';
import { ModelRegistry } from '../scheduling/model-registry';
import type { BreakerState } from '../scheduling/upstream-breaker';
import { BackendMonitor, type UpstreamState } from '../health/backend-monitor';

export interface UpstreamView {
  upstream: string;
  weight: number;
  state: 'up' | 'down';
  /** The circuit breaker fed by real requests (see generation/upstream-breaker.ts). */
  breaker: BreakerState;
  latency_ms: number;
  reason: string | null;
}

export interface ModelView {
  name: string;
  provider: ModelConfig['provider'];
  /** `embedded`: runs inside the server (llama-cpp, mock); `remote`: an inference server. */
  kind: 'embedded' | 'remote';
  upstream_model: string;
  default: boolean;
  required: boolean;
  fallbacks: string[];
  max_new_tokens: number;
  default_max_new_tokens: number;
  timeout_ms: number;
  /** At least one upstream answered its probe. */
  ready: boolean;
  upstreams: UpstreamView[];
}

function toUpstreamView(
  model: ModelConfig,
  index: number,
  { upstream, outcome }: UpstreamState,
  breaker: BreakerState,
): UpstreamView {
  return {
    upstream,
    weight: model.upstreams[index]?.weight ?? 1,
    state: outcome.up ? 'up' : 'down',
    breaker,
    latency_ms: outcome.ms,
    reason: outcome.up ? null : outcome.reason,
  };
}

@Injectable()
export class AdminModelsService {
  constructor(
    private readonly registry: ModelRegistry,
    private readonly backends: BackendMonitor,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** `currency` (CURRENCY) is the unit of prices and budgets: the console shows it beside spend. */
  async list(): Promise<{ default_model: string; currency: string; checked_at: string; data: ModelView[] }> {
    const checkedAt = this.clock.now().toISOString();
    const data = await Promise.all(
      this.registry.all().map(async ({ config, providers, breakers }): Promise<ModelView> => {
        const states = await this.backends.probeModel(config.name, providers);
        return {
          name: config.name,
          provider: config.provider,
          kind: config.upstreams.length > 0 ? 'remote' : 'embedded',
          upstream_model: config.upstreamModel,
          default: config.name === this.registry.defaultModel,
          required: config.required,
          fallbacks: config.fallbacks,
          max_new_tokens: config.maxNewTokens,
          default_max_new_tokens: config.defaultMaxNewTokens,
          timeout_ms: config.timeoutMs,
          ready: states.some(({ outcome }) => outcome.up),
          upstreams: states.map((state, index) =>
            toUpstreamView(config, index, state, breakers.get(providers[index])!.state),
          ),
        };
      }),
    );
    return { default_model: this.registry.defaultModel, currency: this.config.currency, checked_at: checkedAt, data };
  }
}
