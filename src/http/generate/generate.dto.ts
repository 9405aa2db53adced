/**
 * POST /v1/generate request body (API.md "Generation"). Static bounds live here; the bounds
 * that depend on configuration (MAX_PROMPT_CHARS, the model's max_new_tokens) are checked by
 * GenerationService once the model is known.
 */
import { IsInt, IsOptional, IsString, Length, Min } from 'class-validator';
import { SamplingFieldsDto } from './sampling-fields.dto';

export class GenerateRequestDto extends SamplingFieldsDto {
  @IsString()
  @Length(1, Number.MAX_SAFE_INTEGER, { message: 'prompt must not be empty' })
  prompt!: string;

  @IsOptional()
  @IsInt()
  @Min(1)
  max_new_tokens?: number | null;
}
