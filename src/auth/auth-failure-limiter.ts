/**
 * Limits failed authentications per client address (one-minute windows), so keys and the
 * admin token cannot be guessed at speed. Only failures are counted, so a client with a valid
 * key pays nothing. The counts live in the rate-limit store: in Redis when configured (shared
 * by replicas), else in this process; windows follow the injected clock.
 */
import { Inject, Injectable } from '@nestjs/common';
import { AppError } from '../common/app-error';
import type { AppConfig } from '../config/app.config';
import { APP_CONFIG } from '../config/config.module';
import { LimitEvents } from '../rate-limit/limit-events';
import { RATE_LIMIT_WINDOW_MS, secondsUntil } from '../rate-limit/rate-limit-window';
import { RateLimitStore } from '../rate-limit/rate-limit.store';

@Injectable()
export class AuthFailureLimiter {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly store: RateLimitStore,
    private readonly events: LimitEvents,
  ) {}

  /**
   * Records one failure for `client` and returns the error to answer with: the 401 given,
   * or a 429 once the client is over the limit.
   */
  async reject(client: string, failure: AppError): Promise<AppError> {
    // Trackers of API keys are their uuids: an "auth-failures:" tracker never collides with one.
    const { count, resetInMs } = await this.store.hit(`auth-failures:${client}`, RATE_LIMIT_WINDOW_MS);
    if (count <= this.config.authFailureLimit) return failure;
    this.events.rateLimitRejected('auth');
    return new AppError('rate_limit_exceeded', 'too many failed authentication attempts; retry later', {
      headers: { 'Retry-After': String(secondsUntil(resetInMs)) },
    });
  }
}
