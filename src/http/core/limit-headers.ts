/**
 * The one place limit figures (contracts/limit-figures.ts) become response headers, on every
 * response alike (success, 4xx, a stream's first byte):
 * - X-RateLimit-Limit / -Remaining / -Reset (seconds) from the key's rate-limit window;
 * - X-Quota-Limit / -Remaining describe the request quota when one is set, else the token
 *   quota; X-Quota-Tokens-Limit / -Remaining the token quota whenever one is set; X-Quota-Reset
 *   the end of the period (ISO 8601). Remaining counts are as of the reservation: this
 *   request's unit included, its tokens not yet;
 * - X-Concurrency-Limit / -Remaining for keys with max_concurrent;
 * - Retry-After (seconds) on a refusal that says when to come back.
 */
import type { ServerResponse } from 'node:http';
import type { LimitFigures, QuotaFigures, RateLimitFigures } from '../../contracts/limit-figures';

export function rateLimitHeaders(figures: RateLimitFigures): Record<string, string> {
  return {
    'X-RateLimit-Limit': String(figures.limit),
    'X-RateLimit-Remaining': String(Math.max(0, figures.remaining)),
    'X-RateLimit-Reset': String(figures.resetSeconds),
  };
}

export function quotaHeaders(state: QuotaFigures): Record<string, string> {
  const headers: Record<string, string> = {};
  const tokensRemaining = state.tokenQuota === null ? null : Math.max(0, state.tokenQuota - state.tokensUsed);
  if (state.requestQuota !== null) {
    headers['X-Quota-Limit'] = String(state.requestQuota);
    headers['X-Quota-Remaining'] = String(Math.max(0, state.requestQuota - state.requestsUsed));
  } else if (state.tokenQuota !== null) {
    headers['X-Quota-Limit'] = String(state.tokenQuota);
    headers['X-Quota-Remaining'] = String(tokensRemaining);
  }
  if (state.tokenQuota !== null) {
    headers['X-Quota-Tokens-Limit'] = String(state.tokenQuota);
    headers['X-Quota-Tokens-Remaining'] = String(tokensRemaining);
  }
  if (state.requestQuota !== null || state.tokenQuota !== null) headers['X-Quota-Reset'] = state.resetAt.toISOString();
  return headers;
}

export function limitHeaders(figures: LimitFigures): Record<string, string> {
  return {
    ...(figures.rateLimit ? rateLimitHeaders(figures.rateLimit) : {}),
    ...(figures.quota ? quotaHeaders(figures.quota) : {}),
    ...(figures.concurrency
      ? {
          'X-Concurrency-Limit': String(figures.concurrency.limit),
          'X-Concurrency-Remaining': String(Math.max(0, figures.concurrency.remaining)),
        }
      : {}),
    ...(figures.retryAfterSeconds !== undefined ? { 'Retry-After': String(figures.retryAfterSeconds) } : {}),
  };
}

/** Sets the headers of `figures` on a response whose head has not gone out yet. */
export function setLimitHeaders(res: ServerResponse, figures: LimitFigures): void {
  for (const [name, value] of Object.entries(limitHeaders(figures))) res.setHeader(name, value);
}
