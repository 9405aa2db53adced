/**
 * A key or team without a quota or a budget has no counters (its usage is only in the ledger):
 * when it gets one, its period starts with what the ledger holds for the current month, spend
 * included. These assignments do it in the same UPDATE that sets the limit (the CASE reads the
 * row's values before the update, so only an owner that had none is started).
 */
import type { UsageTotal } from '../usage/usage-ledger.service';

const HAD_NONE = 'monthly_quota IS NULL AND monthly_token_quota IS NULL AND monthly_budget IS NULL';

/** Appends the values to `params` and returns the SET assignments that use them. */
export function counterStartAssignments(
  params: unknown[],
  period: { start: Date; resetAt: Date },
  used: UsageTotal,
): string[] {
  params.push(period.start, period.resetAt, used.requests, used.tokens, used.cost);
  const n = params.length;
  const started = (column: string, at: number, cast: string) =>
    `${column} = CASE WHEN ${HAD_NONE} THEN $${at}::${cast} ELSE ${column} END`;
  return [
    started('quota_period_start', n - 4, 'timestamptz'),
    started('quota_reset_at', n - 3, 'timestamptz'),
    started('quota_requests_used', n - 2, 'integer'),
    started('quota_tokens_used', n - 1, 'bigint'),
    started('budget_spent', n, 'numeric'),
  ];
}

/** Whether a change sets a quota or a budget (null clears: nothing to start). */
export function setsCounters(dto: {
  monthly_quota?: number | null;
  monthly_token_quota?: number | null;
  monthly_budget?: number | null;
}): boolean {
  return [dto.monthly_quota, dto.monthly_token_quota, dto.monthly_budget].some((v) => v !== undefined && v !== null);
}
