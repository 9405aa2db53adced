/**
 * The rate limits (API.md "Rate limits", "Teams, prices and budgets"): requests per minute
 * (`rpm_limit`, else DEFAULT_RPM) and optional tokens per minute (`tpm_limit`: checked before a
 * request, charged after it by UsageAccounting), of the key and then of its team (a team counts
 * only the limits it sets), each counted in RateLimitCounters with one atomic hit per request.
 * A refusal names whose limit it was (`param`: key or team); the figures on the request are the
 * window with the fewest requests left.
 */
import { Injectable } from '@nestjs/common';
import { AppError } from '../../contracts/app-error';
import type { LimitOwnerKind } from '../../contracts/authenticated-key';
import type { RateLimitFigures } from '../../contracts/limit-figures';
import type { RequestContext } from '../../contracts/request-context';
import { SPANS } from '../../infra/tracing/trace-attributes';
import { Tracing } from '../../infra/tracing/tracing';
import { RateLimitCounters } from '../../stores/rate-limit/rate-limit-counters';
import { secondsUntil } from '../../stores/rate-limit/rate-limit-window';
import { LimitRejections, type RateLimitReason } from './limit-rejections';
import { tighter } from './tighter-figures';

/** A team's windows in the counters (a key's tracker is its id, a uuid: no clash). */
export function teamTracker(teamId: string): string {
  return `team:${teamId}`;
}

@Injectable()
export class RateLimits {
  constructor(
    private readonly counters: RateLimitCounters,
    private readonly rejections: LimitRejections,
    private readonly tracing: Tracing,
  ) {}

  /**
   * Counts the request of `ctx.apiKey` (and of its team) in its window of `windowMs` and records
   * the window's figures on `ctx`; throws 429 rate_limit_exceeded past `limit` requests, or past
   * the key's tpm_limit in tokens already charged to the window, or past the team's limits.
   */
  async check(ctx: RequestContext, limit: number, windowMs: number): Promise<void> {
    const key = ctx.apiKey!;
    const team = key.team;
    const teamCounts = team !== null && (team.rpmLimit !== null || team.tpmLimit !== null);
    const [keyHit, teamHit] = await this.tracing.span(SPANS.rateLimit, {}, () =>
      Promise.all([
        this.counters.hit(key.id, windowMs),
        teamCounts ? this.counters.hit(teamTracker(team.id), windowMs) : null,
      ]),
    );
    const keyFigures = { limit, remaining: limit - keyHit.count, resetSeconds: secondsUntil(keyHit.resetInMs) };
    let teamFigures: RateLimitFigures | undefined;
    if (teamHit && team?.rpmLimit) {
      const resetSeconds = secondsUntil(teamHit.resetInMs);
      teamFigures = { limit: team.rpmLimit, remaining: team.rpmLimit - teamHit.count, resetSeconds };
    }
    ctx.limits.rateLimit = tighter(keyFigures, teamFigures);
    this.refuseOver('key', keyHit, limit, key.tpmLimit);
    if (teamHit && team) this.refuseOver('team', teamHit, team.rpmLimit, team.tpmLimit);
  }

  /** Throws the 429 of `owner` when its window is past its requests (`rpm` set) or its tokens. */
  private refuseOver(
    owner: LimitOwnerKind,
    hit: { count: number; tokens: number; resetInMs: number },
    rpm: number | null,
    tpm: number | null,
  ): void {
    let reason: RateLimitReason | null = null;
    if (rpm !== null && hit.count > rpm) reason = 'rpm';
    else if (tpm !== null && hit.tokens >= tpm) reason = 'tpm';
    if (reason === null) return;
    this.rejections.rateLimited(reason);
    const resetSeconds = secondsUntil(hit.resetInMs);
    const whose = owner === 'key' ? '' : "the key's team's ";
    const what = reason === 'rpm' ? `${rpm} requests` : `${tpm} tokens`;
    throw new AppError(
      'rate_limit_exceeded',
      `${whose}rate limit of ${what} per minute exceeded; retry in ${resetSeconds} s`,
      { param: owner, figures: { retryAfterSeconds: resetSeconds } },
    );
  }
}
