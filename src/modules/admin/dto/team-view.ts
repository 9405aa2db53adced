/** What the admin API shows of a team (API.md "Teams, prices and budgets"). */
import { toNumberOrNull } from '../../../infra/database/row-values';

export interface TeamRow {
  id: string;
  name: string;
  rpm_limit: number | null;
  tpm_limit: number | null;
  monthly_quota: number | null;
  monthly_token_quota: string | number | bigint | null;
  monthly_budget: string | number | null;
  max_concurrent: number | null;
  created_at: Date;
  updated_at: Date;
  quota_period_start: Date;
  quota_reset_at: Date;
  quota_requests_used: number;
  quota_tokens_used: string | number | bigint;
  budget_spent: string | number;
  budget_reserved: string | number;
}

export interface TeamView {
  id: string;
  name: string;
  rpm_limit: number | null;
  tpm_limit: number | null;
  monthly_quota: number | null;
  monthly_token_quota: number | null;
  /** In CURRENCY; null: no budget. */
  monthly_budget: number | null;
  max_concurrent: number | null;
  created_at: string;
  updated_at: string;
}

export function toTeamView(row: TeamRow): TeamView {
  return {
    id: row.id,
    name: row.name,
    rpm_limit: row.rpm_limit,
    tpm_limit: row.tpm_limit,
    monthly_quota: row.monthly_quota,
    monthly_token_quota: toNumberOrNull(row.monthly_token_quota),
    monthly_budget: row.monthly_budget === null ? null : Number(row.monthly_budget),
    max_concurrent: row.max_concurrent,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}
