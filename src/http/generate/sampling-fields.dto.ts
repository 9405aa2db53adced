/**
 * The request fields every generation API shares (/v1/generate and the OpenAI routes): the
 * model and the sampling parameters, with the bounds of API.md. `null` counts as "not given".
 */
import { applyDecorators } from '@nestjs/common';
import {
  IsBoolean,
  IsInt,
  IsNumber,
  IsOptional,
  IsString,
  Length,
  Max,
  Min,
  registerDecorator,
  type ValidationOptions,
} from 'class-validator';
import type { GenerationInput } from '../../modules/generation/request-resolver';

export const MAX_STOP_SEQUENCES = 4;
export const MAX_STOP_CHARS = 256;
export const MAX_SEED = 2 ** 31 - 1;

/** A string, or a list of at most 4 strings, each 1..256 characters. */
function IsStopSequences(options?: ValidationOptions): PropertyDecorator {
  return (target: object, propertyName: string | symbol) => {
    registerDecorator({
      name: 'isStopSequences',
      target: target.constructor,
      propertyName: String(propertyName),
      options: {
        message: `stop must be a string or a list of at most ${MAX_STOP_SEQUENCES} non-empty strings of at most ${MAX_STOP_CHARS} characters`,
        ...options,
      },
      validator: {
        validate(value: unknown): boolean {
          const list = typeof value === 'string' ? [value] : value;
          return (
            Array.isArray(list) &&
            list.length <= MAX_STOP_SEQUENCES &&
            list.every((item) => typeof item === 'string' && item.length >= 1 && item.length <= MAX_STOP_CHARS)
          );
        },
      },
    });
  };
}

/** An optional `temperature` from 0 to `max` (OpenAI: 2, Anthropic: 1). */
export function IsTemperature(max = 2): PropertyDecorator {
  return applyDecorators(IsOptional(), IsNumber({ allowNaN: false, allowInfinity: false }), Min(0), Max(max));
}

/** An optional `top_p`: greater than 0, at most 1. */
export function IsTopP(): PropertyDecorator {
  return applyDecorators(
    IsOptional(),
    IsNumber({ allowNaN: false, allowInfinity: false }),
    Min(Number.MIN_VALUE, { message: 'top_p must be greater than 0' }),
    Max(1),
  );
}

export class SamplingFieldsDto {
  @IsOptional()
  @IsString()
  @Length(1, 128)
  model?: string | null;

  @IsTemperature()
  temperature?: number | null;

  @IsTopP()
  top_p?: number | null;

  /** 0 and -1 both disable top-k. Not an OpenAI field: on the OpenAI routes an extension, as in vLLM. */
  @IsOptional()
  @IsInt()
  @Min(-1)
  @Max(1000)
  top_k?: number | null;

  @IsOptional()
  @IsStopSequences()
  stop?: string | string[] | null;

  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(MAX_SEED)
  seed?: number | null;

  @IsOptional()
  @IsBoolean()
  stream?: boolean | null;
}

/** The shared fields as the generation service takes them. */
export function samplingInput(dto: SamplingFieldsDto): Omit<GenerationInput, 'prompt'> {
  return {
    model: dto.model,
    temperature: dto.temperature,
    topP: dto.top_p,
    topK: dto.top_k,
    stop: dto.stop,
    seed: dto.seed,
    stream: dto.stream,
  };
}
