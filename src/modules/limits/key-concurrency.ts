/**
 * The key field `max_concurrent` (API.md): a generation of a key that already has that many in
 * flight is refused with 429 rate_limit_exceeded, retry after 1 s (a slot frees as soon as one
 * of its generations ends). Every generation of such a key reports its concurrency figures
 * (X-Concurrency-Limit / -Remaining). A key without the field costs nothing here: no store call.
 */
import { Injectable } from '@nestjs/common';
import { AppError } from '../../contracts/app-error';
import type { RequestContext } from '../../contracts/request-context';
import { ConcurrencyLeases } from '../../stores/concurrency/concurrency-leases';
import { LimitRejections } from './limit-rejections';

@Injectable()
export class KeyConcurrency {
  constructor(
    private readonly leases: ConcurrencyLeases,
    private readonly rejections: LimitRejections,
  ) {}

  /**
   * Takes one of the key's `limit` slots for this generation; returns its release (call it
   * once). Only for keys with max_concurrent: the caller skips the others, at no cost.
   */
  async enter(ctx: RequestContext, limit: number): Promise<() => void> {
    const grant = await this.leases.acquire(ctx.apiKey!.id, limit);
    ctx.limits.concurrency = { limit, remaining: limit - grant.inFlight };
    if (grant.granted) return grant.release;
    this.rejections.rateLimited('concurrency');
    throw new AppError(
      'rate_limit_exceeded',
      `concurrency limit of ${limit} generations in flight exceeded; retry in 1 s`,
      { figures: { retryAfterSeconds: 1 } },
    );
  }
}
