/** POST /v1/completions (OpenAI legacy completions). */
import { IsInt, IsOptional, Min, registerDecorator } from 'class-validator';
import { OnlyNeutral, OpenAiSamplingDto } from './openai-fields';

/** A single string prompt; arrays (batches or token ids) are a clear 400. */
function IsSinglePrompt(): PropertyDecorator {
  return (target: object, propertyName: string | symbol) => {
    registerDecorator({
      name: 'isSinglePrompt',
      target: target.constructor,
      propertyName: String(propertyName),
      options: {
        message: (args) =>
          Array.isArray(args.value)
            ? 'prompt: only a single string prompt is supported (no arrays of prompts or token ids)'
            : 'prompt must be a non-empty string',
      },
      validator: { validate: (value: unknown) => typeof value === 'string' && value.length > 0 },
    });
  };
}

export class CompletionRequestDto extends OpenAiSamplingDto {
  @IsSinglePrompt()
  prompt!: string;

  @IsOptional()
  @IsInt()
  @Min(1)
  max_tokens?: number | null;

  @IsOptional()
  @OnlyNeutral((v) => v === false, 'echo is not supported')
  echo?: boolean | null;

  @IsOptional()
  @OnlyNeutral((v) => v === 0, 'logprobs are not supported')
  logprobs?: number | null;

  @IsOptional()
  @OnlyNeutral((v) => v === '', 'suffix is not supported')
  suffix?: string | null;

  @IsOptional()
  @OnlyNeutral((v) => v === 1, 'only best_of = 1 is supported')
  best_of?: number | null;
}
