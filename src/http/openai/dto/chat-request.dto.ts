/**
 * POST /v1/chat/completions. Content may be a string or a list of text parts; an assistant
 * message that made tool calls may have null content. Tools and response formats: see
 * chat-tools.dto.ts.
 */
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Length,
  Min,
  ValidateNested,
  registerDecorator,
} from 'class-validator';
import {
  IsToolChoice,
  MAX_TOOL_CALLS,
  MAX_TOOLS,
  ResponseFormatDto,
  ToolCallDto,
  type ToolChoiceValue,
  ToolDto,
} from './chat-tools.dto';
import { OnlyNeutral, OpenAiSamplingDto, WithAcceptedOpenAiFields } from './openai-fields';
import { OptionalObject, OptionalString } from '../../core/json-fields';

export const REASONING_EFFORTS = ['none', 'minimal', 'low', 'medium', 'high'] as const;

export const CHAT_ROLES = ['system', 'developer', 'user', 'assistant', 'tool'] as const;

export interface TextPart {
  type: 'text';
  text: string;
}

/** Bounds of a chat request's lists: far above real conversations, far below what hurts. */
export const MAX_CHAT_MESSAGES = 2048;
export const MAX_CONTENT_PARTS = 256;

/**
 * A string, or a non-empty list of `{type: "text", text}` parts (images and audio are not
 * supported); null (or absent) only on an assistant message that carries tool calls.
 */
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
        validate: (value: unknown, args) =>
          typeof value === 'string' ||
          ((value === null || value === undefined) &&
            Array.isArray((args?.object as ChatMessageDto | undefined)?.tool_calls)) ||
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
  content!: string | TextPart[] | null;

  @IsOptional()
  @IsString()
  @Length(1, 256)
  name?: string | null;

  /** Assistant messages: the calls that turn made (checked against the role in openai-input.ts). */
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(MAX_TOOL_CALLS)
  @ValidateNested({ each: true })
  @Type(() => ToolCallDto)
  tool_calls?: ToolCallDto[] | null;

  /** Tool messages: the call this is the result of. */
  @IsOptional()
  @IsString()
  @Length(1, 256)
  tool_call_id?: string | null;

  /** Sent by some clients on assistant messages; a refusal carries no content for the model. */
  @OptionalString()
  refusal?: string | null;
}

export class ChatRequestDto extends WithAcceptedOpenAiFields(OpenAiSamplingDto) {
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
  @OnlyNeutral((v) => v === 0, 'top_logprobs are not supported')
  top_logprobs?: number | null;

  @IsOptional()
  @IsArray()
  @ArrayMaxSize(MAX_TOOLS)
  @ValidateNested({ each: true })
  @Type(() => ToolDto)
  tools?: ToolDto[] | null;

  @IsOptional()
  @IsToolChoice()
  tool_choice?: ToolChoiceValue | null;

  @IsOptional()
  @IsBoolean()
  parallel_tool_calls?: boolean | null;

  @IsOptional()
  @ValidateNested()
  @Type(() => ResponseFormatDto)
  response_format?: ResponseFormatDto | null;

  /** Passed on to vLLM and OpenAI-compatible servers (chat only); ignored by the others. */
  @IsOptional()
  @IsIn(REASONING_EFFORTS)
  reasoning_effort?: (typeof REASONING_EFFORTS)[number] | null;

  /** Text out only: `audio` cannot be honoured. */
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(2)
  @IsIn(['text', 'audio'], { each: true })
  @OnlyNeutral((v) => Array.isArray(v) && !v.includes('audio'), 'audio output is not supported')
  modalities?: string[] | null;

  @IsOptional()
  @OnlyNeutral(() => false, 'audio output is not supported')
  audio?: unknown;

  @IsOptional()
  @OnlyNeutral(() => false, 'web search is not supported: the gateway runs no hosted tools')
  web_search_options?: unknown;

  @IsOptional()
  @OnlyNeutral(() => false, 'functions are not supported: use tools')
  functions?: unknown;

  @IsOptional()
  @OnlyNeutral(() => false, 'function_call is not supported: use tool_choice')
  function_call?: unknown;

  // Accepted and ignored: they change nothing on this gateway (README "Official fields").
  /** A predicted output speeds up OpenAI's decoding only; the answer is the same without it. */
  @OptionalObject()
  prediction?: Record<string, unknown> | null;

  @IsOptional()
  @IsIn(['low', 'medium', 'high'])
  verbosity?: string | null;
}
