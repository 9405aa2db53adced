/**
 * Prometheus metrics: one Registry per application (see metrics.registry.ts) holding the Node
 * process defaults, the HTTP metrics (HttpMetricsMiddleware on every path) and the LLM and
 * limit metrics (LlmMetricsService, injected by the generation path; LimitMetrics counts the
 * rate-limit module's LimitEvents), and readiness as /readyz answered it (ReadinessMetrics).
 * @willsoto/nestjs-prometheus wires the controller and collects the defaults, into our registry
 * rather than the global one.
 */
import {
  type DynamicModule,
  Global,
  type MiddlewareConsumer,
  Module,
  type NestModule,
  RequestMethod,
} from '@nestjs/common';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { HttpMetrics, HttpMetricsMiddleware } from '../../http/middleware/http-metrics.middleware';
import { LimitMetrics } from '../../modules/limits/limit-metrics';
import { LlmMetricsService } from './llm-metrics.service';
import { MetricsTokenGuard } from '../../http/guards/metrics-token.guard';
import { MetricsController } from '../../http/health/metrics.controller';
import { createMetricsRegistry, METRICS_REGISTRY } from './metrics.registry';
import { ReadinessMetrics, ReadinessMetricsMiddleware } from '../../http/middleware/readiness-metrics';

@Global()
@Module({})
export class MetricsModule implements NestModule {
  static forRoot(): DynamicModule {
    const registry = createMetricsRegistry();
    const registryProvider = { provide: METRICS_REGISTRY, useValue: registry };
    return {
      module: MetricsModule,
      imports: [
        PrometheusModule.register({
          path: '/metrics',
          controller: MetricsController,
          defaultMetrics: { enabled: true, config: { register: registry } },
        }),
      ],
      providers: [
        registryProvider,
        HttpMetrics,
        HttpMetricsMiddleware,
        LlmMetricsService,
        LimitMetrics,
        MetricsTokenGuard,
        ReadinessMetrics,
        ReadinessMetricsMiddleware,
      ],
      exports: [registryProvider, LlmMetricsService, MetricsTokenGuard],
    };
  }

  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(HttpMetricsMiddleware).forRoutes({ path: '*path', method: RequestMethod.ALL });
    consumer.apply(ReadinessMetricsMiddleware).forRoutes({ path: 'readyz', method: RequestMethod.GET });
  }
}
