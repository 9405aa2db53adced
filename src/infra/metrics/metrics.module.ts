/**
 * Prometheus metrics: one Registry per application (see metrics.registry.ts) holding the Node
 * process defaults, the HTTP metrics (observed by the HTTP layer's middleware), the LLM and limit
 * metrics (LlmMetricsService, which the features call) and readiness as /readyz answered it.
 * GET /metrics itself is the HTTP layer's (http/health/metrics.controller.ts).
 */
import { type DynamicModule, Global, Module } from '@nestjs/common';
import type { Registry } from 'prom-client';
import { HttpMetrics } from './http-metrics';
import { LlmMetricsService } from './llm-metrics.service';
import { createMetricsRegistry, METRICS_REGISTRY } from './metrics.registry';
import { ReadinessMetrics } from './readiness-metrics';

@Global()
@Module({})
export class MetricsModule {
  /** `registry`: the app's own (its creator shares it with GET /metrics); a fresh one by default. */
  static forRoot(registry: Registry = createMetricsRegistry()): DynamicModule {
    const registryProvider = { provide: METRICS_REGISTRY, useValue: registry };
    return {
      module: MetricsModule,
      providers: [registryProvider, HttpMetrics, LlmMetricsService, ReadinessMetrics],
      exports: [registryProvider, HttpMetrics, LlmMetricsService, ReadinessMetrics],
    };
  }
}
