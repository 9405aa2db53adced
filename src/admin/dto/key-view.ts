/** What the admin API shows of a key: its stored fields, never the hash or the plaintext. */
import type { ApiKeyEntity } from '../../auth/entities/api-key.entity';
import { nextMonthStartUtc } from '../../quota/quota-period';

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
}

export interface KeyUsageView {
  requests: number;
  tokens: number;
  quota_reset_at: string;
}

/** A period that has ended counts as a fresh one, whether or not a request rolled it over yet. */
export function currentPeriod(row: ApiKeyEntity, now: Date): { resetAt: Date; requests: number; tokens: number } {
  if (row.quotaResetAt > now) {
    return { resetAt: row.quotaResetAt, requests: row.quotaRequestsUsed, tokens: row.quotaTokensUsed };
  }
  return { resetAt: nextMonthStartUtc(now), requests: 0, tokens: 0 };
}

export function toKeyView(row: ApiKeyEntity, now: Date): KeyView {
  return {
    id: row.id,
    name: row.name,
    key_prefix: row.keyPrefix,
    rpm_limit: row.rpmLimit,
    tpm_limit: row.tpmLimit,
    monthly_quota: row.monthlyQuota,
    monthly_token_quota: row.monthlyTokenQuota,
    models: row.models,
    active: row.active,
    created_at: row.createdAt.toISOString(),
    expires_at: row.expiresAt?.toISOString() ?? null,
    revoked_at: row.revokedAt?.toISOString() ?? null,
    quota_reset_at: currentPeriod(row, now).resetAt.toISOString(),
  };
}

export function toUsageView(row: ApiKeyEntity, now: Date): KeyUsageView {
  const period = currentPeriod(row, now);
  return { requests: period.requests, tokens: period.tokens, quota_reset_at: period.resetAt.toISOString() };
}
