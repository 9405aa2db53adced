/**
 * Counts limit rejections: subscribes to LimitEvents (owned by the rate-limit module, which
 * emits them for 429 and 402 answers) and feeds rate_limit_rejections_total{reason} and
 * quota_rejections_total{type}. The limit code knows nothing about Prometheus.
 */
import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { LimitEvents } from './limit-events';
import { LlmMetricsService } from '../../infra/metrics/llm-metrics.service';

@Injectable()
export class LimitMetrics implements OnModuleInit, OnModuleDestroy {
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly events: LimitEvents,
    private readonly metrics: LlmMetricsService,
  ) {}

  onModuleInit(): void {
    this.unsubscribe = this.events.subscribe((event) => {
      if (event.kind === 'rate_limit_rejected') this.metrics.rateLimitRejected(event.reason);
      else this.metrics.quotaRejected(event.type);
    });
  }

  onModuleDestroy(): void {
    this.unsubscribe?.();
  }
}
