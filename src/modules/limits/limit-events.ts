/**
 * Rejections by the rate limits and quotas, as events, so metrics can count them
 * (`rate_limit_rejections_total{reason}`, `quota_rejections_total{type}`) without the limit
 * code knowing about Prometheus. Subscribe once at startup; listeners run synchronously on the
 * request path, so they must be cheap and must not throw (a throwing listener is ignored).
 */
import { Injectable } from '@nestjs/common';
import type { QuotaType, RateLimitReason } from '../../infra/metrics/metric-names';

export type { QuotaType, RateLimitReason };

export type LimitEvent =
  { kind: 'rate_limit_rejected'; reason: RateLimitReason } | { kind: 'quota_rejected'; type: QuotaType };

export type LimitEventListener = (event: LimitEvent) => void;

@Injectable()
export class LimitEvents {
  private readonly listeners = new Set<LimitEventListener>();

  /** Returns the unsubscribe function. */
  subscribe(listener: LimitEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A request answered 429 rate_limit_exceeded (`auth`: too many failed authentications). */
  rateLimitRejected(reason: RateLimitReason): void {
    this.emit({ kind: 'rate_limit_rejected', reason });
  }

  /** A request answered 402 quota_exhausted. */
  quotaRejected(type: QuotaType): void {
    this.emit({ kind: 'quota_rejected', type });
  }

  private emit(event: LimitEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // Counting must never break a request.
      }
    }
  }
}
