/**
 * POST /v1/responses (OpenAI's Responses API). The top-level fields are checked here; input
 * items, tools and `text.format` come in many typed shapes and are checked where they are
 * translated (responses-input.ts), each error naming its path. Every official field is
 * accepted: honoured, accepted and ignored where it changes nothing here (`include` entries,
 * `prompt_cache_key`, `service_tier`, `safety_identifier`, `metadata`, `user`, `reasoning`
 * without a backend that takes it), or a 400 for a value the gateway cannot honour
 * (`background: true`, `conversation`, `prompt`, `top_logprobs` > 0). README "Official fields".
 */
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  Length,
  Min,
} from 'class-validator';
import { IsStringOrObjects, OptionalObject, OptionalString } from '../../core/json-fields';
import { IsTemperature, IsTopP } from '../../generate/sampling-fields.dto';
import { OnlyNeutral, WithAcceptedOpenAiFields } from './openai-fields';
import { MAX_CHAT_MESSAGES } from './chat-request.dto';
import { MAX_TOOLS } from './chat-tools.dto';

export class ResponsesRequestDto extends WithAcceptedOpenAiFields(class {}) {
  @IsOptional()
  @IsString()
  @Length(1, 128)
  model?: string | null;

  @IsStringOrObjects(MAX_CHAT_MESSAGES)
  input!: string | Record<string, unknown>[];

  @OptionalString()
  instructions?: string | null;

  @IsOptional()
  @IsArray()
  @ArrayMaxSize(MAX_TOOLS)
  @IsObject({ each: true, message: 'each tool must be an object' })
  tools?: Record<string, unknown>[] | null;

  /** `none`, `auto`, `required`, or `{type: "function", name}`. */
  @IsOptional()
  tool_choice?: string | Record<string, unknown> | null;

  @IsOptional()
  @IsBoolean()
  parallel_tool_calls?: boolean | null;

  /** `format` (text, json_object, json_schema) and `verbosity` (accepted). */
  @OptionalObject()
  text?: Record<string, unknown> | null;

  @IsOptional()
  @IsInt()
  @Min(1)
  max_output_tokens?: number | null;

  @IsTemperature()
  temperature?: number | null;

  @IsTopP()
  top_p?: number | null;

  @OptionalString()
  user?: string | null;

  /** Server-side compaction of long conversations: nothing is compacted here; accepted. */
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(16)
  context_management?: unknown[] | null;

  @IsOptional()
  @IsBoolean()
  stream?: boolean | null;

  @OptionalObject()
  stream_options?: Record<string, unknown> | null;

  @IsOptional()
  @IsString()
  @Length(1, 256)
  previous_response_id?: string | null;

  /** Extra output to include; none of it (encrypted reasoning, logprobs, sources) is produced here. */
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(32)
  @IsString({ each: true })
  include?: string[] | null;

  /** `effort` and `summary`: reasoning_effort for backends that take it, else accepted. */
  @OptionalObject()
  reasoning?: Record<string, unknown> | null;

  @IsOptional()
  @IsIn(['auto', 'disabled'])
  truncation?: string | null;

  @IsOptional()
  @IsInt()
  @Min(1)
  max_tool_calls?: number | null;

  @IsOptional()
  @OnlyNeutral((v) => v === 0, 'logprobs are not supported')
  top_logprobs?: number | null;

  @IsOptional()
  @OnlyNeutral((v) => v === false, 'background responses are not supported')
  background?: boolean | null;

  @IsOptional()
  @OnlyNeutral(() => false, 'conversations are not supported: use previous_response_id')
  conversation?: unknown;

  @IsOptional()
  @OnlyNeutral(() => false, 'prompt templates are not supported')
  prompt?: unknown;
}
