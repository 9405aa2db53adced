/**
 * Validators shared by the OpenAI-compatible request bodies: the sampling fields we honour,
 * and the OpenAI fields we cannot honour, accepted only at their neutral value so SDKs that
 * send defaults keep working while a real use gets a 400 naming the field.
 */
import { Type } from 'class-transformer';
import {
  IsBoolean,
  IsOptional,
  IsString,
  ValidateNested,
  registerDecorator,
  type ValidationOptions,
} from 'class-validator';
import { SamplingFieldsDto } from '../../generate/sampling-fields.dto';

/** Accepts the field only when `isNeutral(value)`; else "<field>: <reason>". */
export function OnlyNeutral(
  isNeutral: (value: unknown) => boolean,
  reason: string,
  options?: ValidationOptions,
): PropertyDecorator {
  return (target: object, propertyName: string | symbol) => {
    registerDecorator({
      name: 'onlyNeutral',
      target: target.constructor,
      propertyName: String(propertyName),
      options: { message: `${String(propertyName)}: ${reason}`, ...options },
      validator: { validate: (value: unknown) => value === undefined || value === null || isNeutral(value) },
    });
  };
}

export class StreamOptionsDto {
  @IsOptional()
  @IsBoolean()
  include_usage?: boolean | null;
}

/** Fields common to /v1/completions and /v1/chat/completions, beyond the shared sampling fields. */
export class OpenAiSamplingDto extends SamplingFieldsDto {
  @IsOptional()
  @ValidateNested()
  @Type(() => StreamOptionsDto)
  stream_options?: StreamOptionsDto | null;

  @IsOptional()
  @IsString()
  user?: string | null;

  @IsOptional()
  @OnlyNeutral((v) => v === 1, 'only n = 1 is supported')
  n?: number | null;

  @IsOptional()
  @OnlyNeutral((v) => typeof v === 'object' && v !== null && Object.keys(v).length === 0, 'logit_bias is not supported')
  logit_bias?: Record<string, number> | null;

  @IsOptional()
  @OnlyNeutral((v) => v === 0, 'presence_penalty is not supported')
  presence_penalty?: number | null;

  @IsOptional()
  @OnlyNeutral((v) => v === 0, 'frequency_penalty is not supported')
  frequency_penalty?: number | null;
}
