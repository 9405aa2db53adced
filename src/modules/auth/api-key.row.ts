/**
 * An api_keys row as raw statements return it (the columns of migrations/, snake_case), and its
 * mapping to what the guard attaches to a request. bigint columns arrive as strings (node-postgres)
 * or bigints (PGlite); they always fit a JS number here.
 */
import type { Priority } from '../../contracts/scheduling';
import type { AuthenticatedKey, TeamLimits } from '../../contracts/authenticated-key';
import { toDecimalOrNull, toNumberOrNull } from '../../infra/database/row-values';

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
  team_id: string | null;
  monthly_budget: string | number | null;
  budget_spent: string | number;
  budget_reserved: string | number;
}

/** The team columns the key lookup joins in (KEY_WITH_TEAM_SQL), as one JSON object; null: no team. */
export interface TeamJson {
  id: string;
  name: string;
  rpm_limit: number | null;
  tpm_limit: number | null;
  monthly_quota: number | null;
  monthly_token_quota: number | string | null;
  monthly_budget: string | null;
  max_concurrent: number | null;
}

/** A key by its hash, with its team's limits (budgets as text: exact decimals). */
export const KEY_WITH_TEAM_SQL = `
SELECT k.*, CASE WHEN t.id IS NULL THEN NULL ELSE json_build_object(
  'id', t.id, 'name', t.name, 'rpm_limit', t.rpm_limit, 'tpm_limit', t.tpm_limit,
  'monthly_quota', t.monthly_quota, 'monthly_token_quota', t.monthly_token_quota,
  'monthly_budget', t.monthly_budget::text, 'max_concurrent', t.max_concurrent) END AS team
FROM api_keys k LEFT JOIN teams t ON t.id = k.team_id
WHERE k.key_hash = $1`;

function toTeamLimits(team: TeamJson | string | null | undefined): TeamLimits | null {
  if (team === null || team === undefined) return null;
  const json: TeamJson = typeof team === 'string' ? (JSON.parse(team) as TeamJson) : team;
  return {
    id: json.id,
    name: json.name,
    rpmLimit: json.rpm_limit,
    tpmLimit: json.tpm_limit,
    monthlyQuota: json.monthly_quota,
    monthlyTokenQuota: toNumberOrNull(json.monthly_token_quota),
    monthlyBudget: json.monthly_budget,
    maxConcurrent: json.max_concurrent,
  };
}

export function toAuthenticatedKey(row: ApiKeyRow & { team?: TeamJson | string | null }): AuthenticatedKey {
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
    monthlyBudget: toDecimalOrNull(row.monthly_budget),
    team: toTeamLimits(row.team),
  };
}
