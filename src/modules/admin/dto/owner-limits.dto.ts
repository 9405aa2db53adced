/**
 * The limit fields keys and teams share (API.md "Admin API", "Teams, prices and budgets"), for
 * POST and PATCH. `null` clears a limit (null = unlimited).
 */
import { IsInt, IsNumber, IsOptional, Max, Min } from 'class-validator';

export const INT32_MAX = 2_147_483_647;

export class OwnerLimitsDto {
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(INT32_MAX)
  rpm_limit?: number | null;

  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(INT32_MAX)
  tpm_limit?: number | null;

  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(INT32_MAX)
  monthly_quota?: number | null;

  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(Number.MAX_SAFE_INTEGER)
  monthly_token_quota?: number | null;

  /** In CURRENCY; checked for range and precision by parseBudget (admin/budget-field.ts). */
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  monthly_budget?: number | null;

  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(INT32_MAX)
  max_concurrent?: number | null;
}
