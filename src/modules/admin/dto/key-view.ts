/** What the admin API shows of a key: its stored fields, never the hash or the plaintext. */
import { toNumber, toNumberOrNull } from '../../../infra/database/row-values';
import type { ApiKeyRow } from '../../auth/api-key.row';
import { nextMonthStartUtc } from '../../limits/quota-period';

export interface KeyView {
  id: string;
  name: string;
  key_prefix: string;
  rpm_limit: number | null;
  tpm_limit: number | null;
  monthly_quota: number | null;
  monthly_token_quota: number | null;
  models: string[] | null;
  active: boolean;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  quota_reset_at: string;
  max_concurrent: number | null;
  priority: string;
  weight: number;
  team_id: string | null;
  /** In CURRENCY; null: no budget. */
  monthly_budget: number | null;
}

export interface KeyUsageView {
  requests: number;
  tokens: number;
  /** Spend this period, in CURRENCY. */
  cost: number;
  quota_reset_at: string;
}

/** A period that has ended counts as a fresh one, whether or not a request rolled it over yet. */
export function currentPeriod(row: ApiKeyRow, now: Date): { resetAt: Date; requests: number; tokens: number } {
  if (row.quota_reset_at > now) {
    return {
      resetAt: row.quota_reset_at,
      requests: row.quota_requests_used,
      tokens: toNumber(row.quota_tokens_used),
    };
  }
  return { resetAt: nextMonthStartUtc(now), requests: 0, tokens: 0 };
}

export function toKeyView(row: ApiKeyRow, now: Date): KeyView {
  return {
    id: row.id,
    name: row.name,
    key_prefix: row.key_prefix,
    rpm_limit: row.rpm_limit,
    tpm_limit: row.tpm_limit,
    monthly_quota: row.monthly_quota,
    monthly_token_quota: toNumberOrNull(row.monthly_token_quota),
    models: row.models,
    active: row.active,
    created_at: row.created_at.toISOString(),
    expires_at: row.expires_at?.toISOString() ?? null,
    revoked_at: row.revoked_at?.toISOString() ?? null,
    quota_reset_at: currentPeriod(row, now).resetAt.toISOString(),
    max_concurrent: row.max_concurrent,
    priority: row.priority,
    weight: row.weight,
    team_id: row.team_id,
    monthly_budget: row.monthly_budget === null ? null : Number(row.monthly_budget),
  };
}
