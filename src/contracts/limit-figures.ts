/**
 * What a limit tells the client about a request, as numbers: the rate-limit window, the quota
 * period, the key's concurrency. Limits put them on the request's context (and on the errors
 * they throw); http/core/limit-headers.ts is the one place that turns them into the
 * X-RateLimit-*, X-Quota-*, X-Concurrency-* and Retry-After headers.
 */

export interface RateLimitFigures {
  /** Requests allowed in the window. */
  limit: number;
  remaining: number;
  /** Whole seconds until the window ends. */
  resetSeconds: number;
}

/** A key's quota state as of its reservation: this request's unit counted, its tokens not yet. */
export interface QuotaFigures {
  requestQuota: number | null;
  tokenQuota: number | null;
  requestsUsed: number;
  tokensUsed: number;
  /** End of the period (the first instant of the next month, UTC). */
  resetAt: Date;
}

export interface ConcurrencyFigures {
  limit: number;
  remaining: number;
}

export interface LimitFigures {
  rateLimit?: RateLimitFigures;
  quota?: QuotaFigures;
  concurrency?: ConcurrencyFigures;
  /** When a refused request may be retried, in whole seconds. */
  retryAfterSeconds?: number;
}
