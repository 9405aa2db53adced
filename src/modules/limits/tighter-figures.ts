/**
 * A request passes its key's limits and its team's; its X-RateLimit-* and X-Quota-* headers
 * describe whichever of the two has the least left (API.md "Teams, prices and budgets").
 */
import type { ConcurrencyFigures, QuotaFigures, RateLimitFigures } from '../../contracts/limit-figures';

/** What a quota has left: the smaller of its request and token remainders (the ones set). */
function quotaLeft(figures: QuotaFigures): number {
  let left = Number.POSITIVE_INFINITY;
  if (figures.requestQuota !== null) left = Math.min(left, figures.requestQuota - figures.requestsUsed);
  if (figures.tokenQuota !== null) left = Math.min(left, figures.tokenQuota - figures.tokensUsed);
  return left;
}

/** The figures with the least left (the key's on a tie); null when none has a quota set. */
export function tighterQuota(all: QuotaFigures[]): QuotaFigures | null {
  let tightest: QuotaFigures | null = null;
  for (const figures of all) {
    if (figures.requestQuota === null && figures.tokenQuota === null) continue;
    if (tightest === null || quotaLeft(figures) < quotaLeft(tightest)) tightest = figures;
  }
  return tightest;
}

/** The window or concurrency figures with the fewest remaining (the first on a tie). */
export function tighter<T extends RateLimitFigures | ConcurrencyFigures>(a: T, b: T | undefined): T {
  return b !== undefined && b.remaining < a.remaining ? b : a;
}
