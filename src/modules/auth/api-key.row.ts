/**
 * An api_keys row as raw statements return it (the columns of migrations/, snake_case), and its
 * mapping to what the guard attaches to a request. bigint columns arrive as strings (node-postgres)
 * or bigints (PGlite); they always fit a JS number here.
 */
import type { Priority } from '../../contracts/scheduling';
import type { AuthenticatedKey } from '../../contracts/authenticated-key';
import { toNumberOrNull } from '../../infra/database/row-values';

export interface ApiKeyRow {
  id: string;
  name: string;
  key_prefix: string;
  key_hash: string;
  rpm_limit: number | null;
  tpm_limit: number | null;
  monthly_quota: number | null;
  monthly_token_quota: string | number | bigint | null;
  models: string[] | null;
  active: boolean;
  created_at: Date;
  updated_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  quota_period_start: Date;
  quota_reset_at: Date;
  quota_requests_used: number;
  quota_tokens_used: string | number | bigint;
  max_concurrent: number | null;
  priority: Priority;
  weight: number;
}

export function toAuthenticatedKey(row: ApiKeyRow): AuthenticatedKey {
  return {
    id: row.id,
    name: row.name,
    rpmLimit: row.rpm_limit,
    tpmLimit: row.tpm_limit,
    monthlyQuota: row.monthly_quota,
    monthlyTokenQuota: toNumberOrNull(row.monthly_token_quota),
    models: row.models,
    active: row.active,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    maxConcurrent: row.max_concurrent,
    priority: row.priority,
    weight: row.weight,
  };
}
