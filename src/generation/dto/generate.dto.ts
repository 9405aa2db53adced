/**
 * POST /v1/generate request body (API.md "Generation"). Static bounds live here; the bounds
 * that depend on configuration (MAX_PROMPT_CHARS, the model's max_new_tokens) are checked by
 * GenerationService once the model is known. `null` counts as "not given" for optional fields.
 */
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

export const MAX_STOP_SEQUENCES = 4;
export const MAX_STOP_CHARS = 256;
export const MAX_SEED = 2 ** 31 - 1;

/** A string, or a list of at most 4 strings, each 1..256 characters. */
export function IsStopSequences(options?: ValidationOptions): PropertyDecorator {
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

export class GenerateRequestDto {
  @IsOptional()
  @IsString()
  @Length(1, 128)
  model?: string | null;

  @IsString()
  @Length(1, Number.MAX_SAFE_INTEGER, { message: 'prompt must not be empty' })
  prompt!: string;

  @IsOptional()
  @IsInt()
  @Min(1)
  max_new_tokens?: number | null;

  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(2)
  temperature?: number | null;

  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(Number.MIN_VALUE, { message: 'top_p must be greater than 0' })
  @Max(1)
  top_p?: number | null;

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
