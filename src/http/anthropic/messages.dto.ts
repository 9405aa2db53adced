/**
 * POST /v1/messages and /v1/messages/count_tokens (Anthropic's Messages API). The top-level
 * fields are checked here; content blocks, tools and `tool_choice` come in many typed shapes and
 * are checked one by one where they are translated (messages-input.ts), each error naming its
 * path (`messages.2.content.0.type`). Fields that change nothing on this gateway
 * (`cache_control`, `metadata`, `service_tier`, `context_management`) are accepted; README
 * "Anthropic Messages" lists them.
 */
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  Length,
  Max,
  Min,
} from 'class-validator';
import { IsStringOrObjects, OptionalObject, OptionalString } from '../core/json-fields';
import { MAX_CHAT_MESSAGES } from '../openai/dto/chat-request.dto';
import { MAX_TOOLS } from '../openai/dto/chat-tools.dto';
import { IsTemperature, IsTopP, MAX_STOP_CHARS, MAX_STOP_SEQUENCES } from '../generate/sampling-fields.dto';

/** The fields count_tokens shares with a message request (what makes up the prompt). */
export class CountTokensRequestDto {
  @IsString()
  @Length(1, 128)
  model!: string;

  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_CHAT_MESSAGES)
  @IsObject({ each: true, message: 'each message must be an object' })
  messages!: Record<string, unknown>[];

  @IsOptional()
  @IsStringOrObjects(256)
  system?: string | Record<string, unknown>[] | null;

  @IsOptional()
  @IsArray()
  @ArrayMaxSize(MAX_TOOLS)
  @IsObject({ each: true, message: 'each tool must be an object' })
  tools?: Record<string, unknown>[] | null;

  @OptionalObject()
  tool_choice?: Record<string, unknown> | null;

  /** Extended thinking: passed to backends whose chat template has a thinking switch, else ignored. */
  @OptionalObject()
  thinking?: Record<string, unknown> | null;

  /** Claude Code's context editing (beta): nothing to edit in a stateless gateway; accepted. */
  @OptionalObject()
  context_management?: Record<string, unknown> | null;

  /** Automatic prompt caching: backends cache prefixes on their own; accepted. */
  @OptionalObject()
  cache_control?: Record<string, unknown> | null;

  /** `effort` (reasoning effort for backends that take it) and `format` (a JSON schema the answer follows). */
  @OptionalObject()
  output_config?: Record<string, unknown> | null;

  // Accepted and ignored: Anthropic's routing, accounting and speed settings mean nothing here.
  @OptionalString()
  speed?: string | null;

  @OptionalString()
  user_profile_id?: string | null;

  @OptionalString()
  workspace_id?: string | null;

  /** Anthropic-hosted MCP servers: the gateway runs no tools (400 unless empty). */
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(0, { message: 'mcp_servers: the gateway does not connect to MCP servers' })
  mcp_servers?: unknown[] | null;
}

export class MessagesRequestDto extends CountTokensRequestDto {
  @IsInt()
  @Min(1)
  max_tokens!: number;

  @IsOptional()
  @IsArray()
  @ArrayMaxSize(MAX_STOP_SEQUENCES)
  @IsString({ each: true })
  @Length(1, MAX_STOP_CHARS, { each: true })
  stop_sequences?: string[] | null;

  @IsOptional()
  @IsBoolean()
  stream?: boolean | null;

  @IsTemperature(1)
  temperature?: number | null;

  @IsTopP()
  top_p?: number | null;

  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(1000)
  top_k?: number | null;

  /** `user_id` only, for Anthropic's abuse detection: nothing to do here. */
  @OptionalObject()
  metadata?: Record<string, unknown> | null;

  @IsOptional()
  @IsIn(['auto', 'standard_only'])
  service_tier?: string | null;

  @OptionalObject()
  diagnostics?: Record<string, unknown> | null;

  @OptionalString()
  inference_geo?: string | null;

  /** Code-execution containers are Anthropic's: refused unless absent. */
  @IsOptional()
  @IsIn([null], { message: 'container: the gateway runs no code-execution containers' })
  container?: null;
}
