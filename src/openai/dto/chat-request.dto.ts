/** POST /v1/chat/completions. Content may be a string or a list of text parts. */
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Length,
  Min,
  ValidateNested,
  registerDecorator,
} from 'class-validator';
import { OnlyNeutral, OpenAiSamplingDto } from './openai-fields';

export const CHAT_ROLES = ['system', 'developer', 'user', 'assistant'] as const;

export interface TextPart {
  type: 'text';
  text: string;
}

/** Bounds of a chat request's lists: far above real conversations, far below what hurts. */
export const MAX_CHAT_MESSAGES = 2048;
export const MAX_CONTENT_PARTS = 256;

/** A string, or a non-empty list of `{type: "text", text}` parts (images and audio are not supported). */
function IsTextContent(): PropertyDecorator {
  return (target: object, propertyName: string | symbol) => {
    registerDecorator({
      name: 'isTextContent',
      target: target.constructor,
      propertyName: String(propertyName),
      options: {
        message: `content must be a string or a list of at most ${MAX_CONTENT_PARTS} {"type": "text", "text": string} parts`,
      },
      validator: {
        validate: (value: unknown) =>
          typeof value === 'string' ||
          (Array.isArray(value) &&
            value.length > 0 &&
            value.length <= MAX_CONTENT_PARTS &&
            value.every(
              (part) =>
                typeof part === 'object' &&
                part !== null &&
                Object.keys(part).every((k) => k === 'type' || k === 'text') &&
                (part as TextPart).type === 'text' &&
                typeof (part as TextPart).text === 'string',
            )),
      },
    });
  };
}

export class ChatMessageDto {
  @IsIn(CHAT_ROLES, { message: `role must be one of ${CHAT_ROLES.join(', ')}` })
  role!: (typeof CHAT_ROLES)[number];

  @IsTextContent()
  content!: string | TextPart[];

  @IsOptional()
  @IsString()
  @Length(1, 256)
  name?: string | null;
}

export class ChatRequestDto extends OpenAiSamplingDto {
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_CHAT_MESSAGES)
  @ValidateNested({ each: true })
  @Type(() => ChatMessageDto)
  messages!: ChatMessageDto[];

  @IsOptional()
  @IsInt()
  @Min(1)
  max_tokens?: number | null;

  @IsOptional()
  @IsInt()
  @Min(1)
  max_completion_tokens?: number | null;

  @IsOptional()
  @OnlyNeutral((v) => v === false, 'logprobs are not supported')
  logprobs?: boolean | null;

  @IsOptional()
  @OnlyNeutral(() => false, 'top_logprobs are not supported')
  top_logprobs?: number | null;

  @IsOptional()
  @OnlyNeutral((v) => Array.isArray(v) && v.length === 0, 'tools are not supported')
  tools?: unknown[] | null;

  @IsOptional()
  @OnlyNeutral((v) => v === 'none', 'tool_choice is not supported')
  tool_choice?: unknown;

  @IsOptional()
  @OnlyNeutral(
    (v) =>
      typeof v === 'object' && v !== null && (v as { type?: unknown }).type === 'text' && Object.keys(v).length === 1,
    'only response_format {"type": "text"} is supported',
  )
  response_format?: unknown;
}
