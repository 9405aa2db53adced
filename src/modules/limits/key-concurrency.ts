/**
 * The fields `max_concurrent` of a key and of its team (API.md): a generation of a key (or team)
 * that already has that many in flight is refused with 429 rate_limit_exceeded (`param` names
 * which), retry after 1 s (a slot frees as soon as one of its generations ends). Every generation
 * of such a key reports the concurrency figures with the fewest slots left (X-Concurrency-Limit /
 * -Remaining). A key and team without the field cost nothing here: no store call.
 */
import { Injectable } from '@nestjs/common';
import { AppError } from '../../contracts/app-error';
import type { LimitOwnerKind } from '../../contracts/authenticated-key';
import type { RequestContext } from '../../contracts/request-context';
import { ConcurrencyLeases } from '../../stores/concurrency/concurrency-leases';
import { LimitRejections } from './limit-rejections';
import { teamTracker } from './rate-limits';
import { tighter } from './tighter-figures';

@Injectable()
export class KeyConcurrency {
  constructor(
    private readonly leases: ConcurrencyLeases,
    private readonly rejections: LimitRejections,
  ) {}

  /** Whether generations of this request's key need a lease (its or its team's max_concurrent). */
  static limited(ctx: RequestContext): boolean {
    const key = ctx.apiKey!;
    return key.maxConcurrent !== null || (key.team !== null && key.team.maxConcurrent !== null);
  }

  /**
   * Takes one slot of the key's and one of its team's for this generation; returns the release
   * (call it once). Only for limited keys: the caller skips the others, at no cost.
   */
  async enter(ctx: RequestContext): Promise<() => void> {
    const key = ctx.apiKey!;
    const releases: (() => void)[] = [];
    const release = () => releases.forEach((done) => done());
    try {
      if (key.maxConcurrent !== null) releases.push(await this.take(ctx, 'key', key.id, key.maxConcurrent));
      const team = key.team;
      if (team?.maxConcurrent) releases.push(await this.take(ctx, 'team', teamTracker(team.id), team.maxConcurrent));
    } catch (error) {
      release();
      throw error;
    }
    return release;
  }

  private async take(ctx: RequestContext, owner: LimitOwnerKind, id: string, limit: number): Promise<() => void> {
    const grant = await this.leases.acquire(id, limit);
    ctx.limits.concurrency = tighter({ limit, remaining: limit - grant.inFlight }, ctx.limits.concurrency);
    if (grant.granted) return grant.release;
    this.rejections.rateLimited('concurrency');
    const whose = owner === 'key' ? '' : "the key's team's ";
    throw new AppError(
      'rate_limit_exceeded',
      `${whose}concurrency limit of ${limit} generations in flight exceeded; retry in 1 s`,
      { param: owner, figures: { retryAfterSeconds: 1 } },
    );
  }
}
