/** The request fields of POST and PATCH /admin/teams: a name and the limits keys also have. */
import { IsString, Length, ValidateIf } from 'class-validator';
import { OwnerLimitsDto } from './owner-limits.dto';

export class TeamLimitsDto extends OwnerLimitsDto {}

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
