/**
 * POST /v1/embeddings in OpenAI's shape: `input` is a string, a list of strings, a list of token
 * ids, or a list of such lists; `encoding_format` float (default) or base64; `dimensions` where
 * the backend supports it.
 */
import { IsIn, IsInt, IsOptional, IsString, Length, Max, Min, registerDecorator } from 'class-validator';

/** OpenAI's bound on inputs per request. */
export const MAX_EMBEDDING_INPUTS = 2048;
export const ENCODING_FORMATS = ['float', 'base64'] as const;

const isTokenId = (value: unknown): boolean => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
const isTokenArray = (value: unknown): boolean => Array.isArray(value) && value.length > 0 && value.every(isTokenId);

/** The four shapes of `input`; empty strings and empty lists are refused (as OpenAI does). */
function IsEmbeddingInput(): PropertyDecorator {
  return (target: object, propertyName: string | symbol) => {
    registerDecorator({
      name: 'isEmbeddingInput',
      target: target.constructor,
      propertyName: String(propertyName),
      options: {
        message: `input must be a non-empty string, a list of at most ${MAX_EMBEDDING_INPUTS} non-empty strings, a list of token ids, or a list of such lists`,
      },
      validator: {
        validate(value: unknown): boolean {
          if (typeof value === 'string') return value.length > 0;
          if (!Array.isArray(value) || value.length === 0 || value.length > MAX_EMBEDDING_INPUTS) return false;
          if (value.every((item) => typeof item === 'string')) return value.every((item: string) => item.length > 0);
          return isTokenArray(value) || value.every(isTokenArray);
        },
      },
    });
  };
}

export class EmbeddingsRequestDto {
  @IsOptional()
  @IsString()
  @Length(1, 128)
  model?: string | null;

  @IsEmbeddingInput()
  input!: string | string[] | number[] | number[][];

  @IsOptional()
  @IsIn(ENCODING_FORMATS, { message: `encoding_format must be one of ${ENCODING_FORMATS.join(', ')}` })
  encoding_format?: (typeof ENCODING_FORMATS)[number] | null;

  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(65_536)
  dimensions?: number | null;

  @IsOptional()
  @IsString()
  user?: string | null;
}

/** The inputs as a list: one string, or one token array, becomes a list of one. */
export function embeddingInputs(input: EmbeddingsRequestDto['input']): string[] | number[][] {
  if (typeof input === 'string') return [input];
  if (input.every((item) => typeof item === 'number')) return [input as number[]];
  return input as string[] | number[][];
}
