/**
 * The request fields of POST and PATCH /admin/keys. `null` clears an optional limit (null =
 * unlimited, models null = every model); fields that cannot be null reject it.
 */
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsISO8601,
  IsOptional,
  IsString,
  Length,
  Max,
  Min,
  ValidateIf,
} from 'class-validator';
import { invalidRequest } from '../../../contracts/app-error';
import { PRIORITIES, type Priority } from '../../../contracts/scheduling';
import { OwnerLimitsDto } from './owner-limits.dto';

/** Dates the API accepts: years 0001..9999 (what PostgreSQL and ISO 8601 basic years share). */
export function isInDateRange(date: Date): boolean {
  if (Number.isNaN(date.getTime())) return false;
  const year = date.getUTCFullYear();
  return year >= 1 && year <= 9999;
}

/** An ISO 8601 timestamp already checked by @IsISO8601, as a Date within years 0001..9999. */
export function parseTimestamp(value: string, param: string): Date {
  const date = new Date(value);
  if (!isInDateRange(date)) throw invalidRequest(`${param} must be a date between the years 0001 and 9999`, param);
  return date;
}

export class KeyLimitsDto extends OwnerLimitsDto {
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(100)
  @IsString({ each: true })
  models?: string[] | null;

  @IsOptional()
  @IsISO8601({ strict: true, strictSeparator: true })
  expires_at?: string | null;

  // priority and weight always have a value: null is refused, not taken as "unset".
  @ValidateIf((dto: KeyLimitsDto) => dto.priority !== undefined)
  @IsIn(PRIORITIES)
  priority?: Priority;

  @ValidateIf((dto: KeyLimitsDto) => dto.weight !== undefined)
  @IsInt()
  @Min(1)
  @Max(100)
  weight?: number;
}

export class CreateKeyDto extends KeyLimitsDto {
  @IsString()
  @Length(1, 200)
  name!: string;

  /** The team the key joins (null: none). */
  @IsOptional()
  @IsString()
  team_id?: string | null;
}

export class UpdateKeyDto extends KeyLimitsDto {
  @ValidateIf((dto: UpdateKeyDto) => dto.name !== undefined)
  @IsString()
  @Length(1, 200)
  name?: string;

  @ValidateIf((dto: UpdateKeyDto) => dto.active !== undefined)
  @IsBoolean()
  active?: boolean;

  /** The team the key moves to; null leaves its team. */
  @IsOptional()
  @IsString()
  team_id?: string | null;
}
