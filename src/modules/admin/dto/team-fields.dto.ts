/** The request fields of POST and PATCH /admin/teams. `null` clears an optional limit (null = unlimited). */
import { IsInt, IsNumber, IsOptional, IsString, Length, Max, Min, ValidateIf } from 'class-validator';

const INT32_MAX = 2_147_483_647;

export class TeamLimitsDto {
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

  /** In CURRENCY; checked for range and precision by parseBudget. */
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  monthly_budget?: number | null;

  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(INT32_MAX)
  max_concurrent?: number | null;
}

export class CreateTeamDto extends TeamLimitsDto {
  @IsString()
  @Length(1, 200)
  name!: string;
}

export class UpdateTeamDto extends TeamLimitsDto {
  @ValidateIf((dto: UpdateTeamDto) => dto.name !== undefined)
  @IsString()
  @Length(1, 200)
  name?: string;
}
