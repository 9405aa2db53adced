/**
 * Puts limit rejections on the request's server span (`llm.rate_limit.rejected`: rpm, tpm or
 * auth; `llm.quota.rejected`: requests or tokens), from the LimitEvents the limit code emits
 * (as LimitMetrics counts them). LimitEvents listeners run synchronously on the request path,
 * so the active context is the rejected request's.
 */
import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { LimitEvents } from './limit-events';
import { LLM } from '../../infra/tracing/trace-attributes';
import { Tracing } from '../../infra/tracing/tracing';

@Injectable()
export class LimitTraceAttributes implements OnModuleInit, OnModuleDestroy {
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly events: LimitEvents,
    private readonly tracing: Tracing,
  ) {}

  onModuleInit(): void {
    if (!this.tracing.enabled) return;
    this.unsubscribe = this.events.subscribe((event) => {
      const span = this.tracing.requestSpan();
      if (event.kind === 'rate_limit_rejected') span.setAttributes({ [LLM.rateLimitRejected]: event.reason });
      else span.setAttributes({ [LLM.quotaRejected]: event.type });
    });
  }

  onModuleDestroy(): void {
    this.unsubscribe?.();
  }
}
