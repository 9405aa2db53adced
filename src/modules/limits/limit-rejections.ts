/**
 * Where a refusal by a limit is recorded: `rate_limit_rejections_total{reason}` and
 * `quota_rejections_total{type}`, and on the request's server span (`llm.rate_limit.rejected`,
 * `llm.quota.rejected`). Runs synchronously on the request path (the active trace context is the
 * refused request's) and only touches in-memory values.
 */
import { Injectable } from '@nestjs/common';
import { LlmMetricsService } from '../../infra/metrics/llm-metrics.service';
import type { QuotaType, RateLimitReason } from '../../infra/metrics/metric-names';
import { LLM } from '../../infra/tracing/trace-attributes';
import { Tracing } from '../../infra/tracing/tracing';

export type { QuotaType, RateLimitReason };

@Injectable()
export class LimitRejections {
  constructor(
    private readonly metrics: LlmMetricsService,
    private readonly tracing: Tracing,
  ) {}

  /** A request answered 429 rate_limit_exceeded (`auth`: too many failed authentications). */
  rateLimited(reason: RateLimitReason): void {
    this.metrics.rateLimitRejected(reason);
    if (this.tracing.enabled) this.tracing.requestSpan().setAttributes({ [LLM.rateLimitRejected]: reason });
  }

  /** A request answered 402 budget_exhausted, by its key's or its team's budget. */
  budgetExhausted(owner: 'key' | 'team'): void {
    this.metrics.quotaRejected('budget');
    if (this.tracing.enabled) this.tracing.requestSpan().setAttributes({ [LLM.quotaRejected]: `budget:${owner}` });
  }

  /** A request answered 402 quota_exhausted. */
  quotaExhausted(type: QuotaType): void {
    this.metrics.quotaRejected(type);
    if (this.tracing.enabled) this.tracing.requestSpan().setAttributes({ [LLM.quotaRejected]: type });
  }
}
