/**
 * The key field `max_concurrent` (API.md): a generation of a key that already has that many in
 * flight is refused with 429 rate_limit_exceeded, `Retry-After: 1` (a slot frees as soon as one
 * of its generations ends). Every generation of such a key carries X-Concurrency-Limit and
 * X-Concurrency-Remaining. A key without the field costs nothing here: no store call.
 */
import { Injectable } from '@nestjs/common';
import type { Response } from 'express';
import type { AuthenticatedKey } from '../../contracts/authenticated-key';
import { AppError } from '../../contracts/app-error';
import { LimitEvents } from './limit-events';
import { ConcurrencyLeases } from '../../stores/concurrency/concurrency-leases';

@Injectable()
export class KeyConcurrency {
  constructor(
    private readonly leases: ConcurrencyLeases,
    private readonly events: LimitEvents,
  ) {}

  /**
   * Takes one of the key's `limit` slots for this generation; returns its release (call it
   * once). Only for keys with max_concurrent: the caller skips the others, at no cost.
   */
  async enter(key: AuthenticatedKey, limit: number, res: Response): Promise<() => void> {
    const grant = await this.leases.acquire(key.id, limit);
    res.setHeader('X-Concurrency-Limit', String(limit));
    res.setHeader('X-Concurrency-Remaining', String(Math.max(0, limit - grant.inFlight)));
    if (grant.granted) return grant.release;
    this.events.rateLimitRejected('concurrency');
    throw new AppError(
      'rate_limit_exceeded',
      `concurrency limit of ${limit} generations in flight exceeded; retry in 1 s`,
      { headers: { 'Retry-After': '1' } },
    );
  }
}
