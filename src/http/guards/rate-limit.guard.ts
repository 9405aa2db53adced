/**
 * The per-key rate limit, a ThrottlerGuard registered globally after the API key guard (so it
 * sees the authenticated key) and before pipes (so 429 comes before request validation).
 * Every request authenticated with a client key counts. X-RateLimit-* headers are set on the
 * response here, before anything else can fail, so they are on every such answer: success, 429,
 * and the 400/402/404/5xx errors raised later.
 */
import { Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  InjectThrottlerOptions,
  InjectThrottlerStorage,
  ThrottlerGuard,
  type ThrottlerModuleOptions,
  type ThrottlerRequest,
  type ThrottlerStorage,
} from '@nestjs/throttler';
import type { Response } from 'express';
import { AppError } from '../../contracts/app-error';
import type { AppRequest } from '../../contracts/request-context';
import { SPANS } from '../../infra/tracing/trace-attributes';
import { Tracing } from '../../infra/tracing/tracing';
import { LimitEvents, type RateLimitReason } from '../../modules/limits/limit-events';
import { secondsUntil } from '../../stores/rate-limit/rate-limit-window';
import { RateLimitCounters } from '../../stores/rate-limit/rate-limit-counters';

@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() storage: ThrottlerStorage,
    reflector: Reflector,
    private readonly counters: RateLimitCounters,
    private readonly events: LimitEvents,
    private readonly tracing: Tracing,
  ) {
    super(options, storage, reflector);
  }

  /** One atomic hit per request; the limit (rpm) and tracker (key id) come from the throttler options. */
  protected override async handleRequest({ context, limit, ttl, getTracker }: ThrottlerRequest): Promise<boolean> {
    const http = context.switchToHttp();
    const req = http.getRequest<AppRequest>();
    const res = http.getResponse<Response>();
    const tracker = await getTracker(req, context);
    const hit = await this.tracing.span(SPANS.rateLimit, {}, () => this.counters.hit(tracker, ttl));
    const resetSeconds = String(secondsUntil(hit.resetInMs));
    res.setHeader('X-RateLimit-Limit', String(limit));
    res.setHeader('X-RateLimit-Remaining', String(Math.max(0, limit - hit.count)));
    res.setHeader('X-RateLimit-Reset', resetSeconds);

    const tpmLimit = req.ctx.apiKey?.tpmLimit ?? null;
    let reason: RateLimitReason | null = null;
    if (hit.count > limit) reason = 'rpm';
    else if (tpmLimit !== null && hit.tokens >= tpmLimit) reason = 'tpm';
    if (reason === null) return true;

    this.events.rateLimitRejected(reason);
    const message =
      reason === 'rpm'
        ? `rate limit of ${limit} requests per minute exceeded; retry in ${resetSeconds} s`
        : `rate limit of ${tpmLimit} tokens per minute exceeded; retry in ${resetSeconds} s`;
    throw new AppError('rate_limit_exceeded', message, { headers: { 'Retry-After': resetSeconds } });
  }
}
