/**
 * The per-key rate limits (API.md "Rate limits"): requests per minute (`rpm_limit`, else
 * DEFAULT_RPM) and optional tokens per minute (`tpm_limit`: checked before a request, charged
 * after it by UsageAccounting), counted in RateLimitCounters with one atomic hit per request.
 */
import { Injectable } from '@nestjs/common';
import { AppError } from '../../contracts/app-error';
import type { RequestContext } from '../../contracts/request-context';
import { SPANS } from '../../infra/tracing/trace-attributes';
import { Tracing } from '../../infra/tracing/tracing';
import { RateLimitCounters } from '../../stores/rate-limit/rate-limit-counters';
import { secondsUntil } from '../../stores/rate-limit/rate-limit-window';
import { LimitRejections, type RateLimitReason } from './limit-rejections';

@Injectable()
export class RateLimits {
  constructor(
    private readonly counters: RateLimitCounters,
    private readonly rejections: LimitRejections,
    private readonly tracing: Tracing,
  ) {}

  /**
   * Counts the request of `ctx.apiKey` in its window of `windowMs` and records the window's
   * figures on `ctx`; throws 429 rate_limit_exceeded past `limit` requests, or past the key's
   * tpm_limit in tokens already charged to the window.
   */
  async check(ctx: RequestContext, limit: number, windowMs: number): Promise<void> {
    const key = ctx.apiKey!;
    const hit = await this.tracing.span(SPANS.rateLimit, {}, () => this.counters.hit(key.id, windowMs));
    const resetSeconds = secondsUntil(hit.resetInMs);
    ctx.limits.rateLimit = { limit, remaining: limit - hit.count, resetSeconds };

    const tpmLimit = key.tpmLimit;
    let reason: RateLimitReason | null = null;
    if (hit.count > limit) reason = 'rpm';
    else if (tpmLimit !== null && hit.tokens >= tpmLimit) reason = 'tpm';
    if (reason === null) return;

    this.rejections.rateLimited(reason);
    const message =
      reason === 'rpm'
        ? `rate limit of ${limit} requests per minute exceeded; retry in ${resetSeconds} s`
        : `rate limit of ${tpmLimit} tokens per minute exceeded; retry in ${resetSeconds} s`;
    throw new AppError('rate_limit_exceeded', message, { figures: { retryAfterSeconds: resetSeconds } });
  }
}
