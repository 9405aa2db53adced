/**
 * The chat request's tool-calling and structured-output fields, in OpenAI's shapes: `tools`,
 * `tool_choice`, assistant `tool_calls`, and `response_format`. JSON schemas (`parameters`,
 * `json_schema.schema`) are taken as opaque JSON objects: the backend, or the embedded engine's
 * grammar builder, is what understands them.
 */
import { Type } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsObject,
  IsOptional,
  IsString,
  Length,
  Matches,
  MaxLength,
  ValidateNested,
  registerDecorator,
} from 'class-validator';

/** OpenAI's rule for function names (the SDKs and every backend accept it). */
export const FUNCTION_NAME = /^[A-Za-z0-9_-]{1,64}$/;
export const MAX_TOOLS = 128;
export const MAX_TOOL_CALLS = 128;
/** Arguments of one call as the model wrote them (a JSON text). */
export const MAX_ARGUMENTS_CHARS = 100_000;

export class ToolFunctionDto {
  @IsString()
  @Matches(FUNCTION_NAME, { message: 'function name must be 1-64 letters, digits, _ or -' })
  name!: string;

  @IsOptional()
  @IsString()
  @MaxLength(10_000)
  description?: string | null;

  @IsOptional()
  @IsObject({ message: 'parameters must be a JSON schema object' })
  parameters?: Record<string, unknown> | null;

  @IsOptional()
  @IsBoolean()
  strict?: boolean | null;
}

export class ToolDto {
  @IsIn(['function'], { message: 'only tools of type "function" are supported' })
  type!: 'function';

  @ValidateNested()
  @Type(() => ToolFunctionDto)
  function!: ToolFunctionDto;
}

export class ToolCallFunctionDto {
  @IsString()
  @Matches(FUNCTION_NAME, { message: 'function name must be 1-64 letters, digits, _ or -' })
  name!: string;

  @IsString()
  @MaxLength(MAX_ARGUMENTS_CHARS)
  arguments!: string;
}

/** A call an earlier assistant turn made, sent back with the conversation. */
export class ToolCallDto {
  @IsString()
  @Length(1, 256)
  id!: string;

  @IsIn(['function'], { message: 'only tool calls of type "function" are supported' })
  type!: 'function';

  @ValidateNested()
  @Type(() => ToolCallFunctionDto)
  function!: ToolCallFunctionDto;
}

export type ToolChoiceValue = 'none' | 'auto' | 'required' | { type: 'function'; function: { name: string } };

/** `none`, `auto`, `required`, or `{"type": "function", "function": {"name": …}}`. */
export function IsToolChoice(): PropertyDecorator {
  return (target: object, propertyName: string | symbol) => {
    registerDecorator({
      name: 'isToolChoice',
      target: target.constructor,
      propertyName: String(propertyName),
      options: {
        message: 'tool_choice must be "none", "auto", "required" or {"type": "function", "function": {"name": …}}',
      },
      validator: {
        validate(value: unknown): boolean {
          if (value === 'none' || value === 'auto' || value === 'required') return true;
          if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
          const { type, function: fn, ...rest } = value as Record<string, unknown>;
          if (type !== 'function' || Object.keys(rest).length > 0) return false;
          if (typeof fn !== 'object' || fn === null || Array.isArray(fn)) return false;
          const { name, ...other } = fn as Record<string, unknown>;
          return typeof name === 'string' && FUNCTION_NAME.test(name) && Object.keys(other).length === 0;
        },
      },
    });
  };
}

export class JsonSchemaFormatDto {
  @IsString()
  @Matches(FUNCTION_NAME, { message: 'json_schema.name must be 1-64 letters, digits, _ or -' })
  name!: string;

  @IsOptional()
  @IsString()
  @MaxLength(10_000)
  description?: string | null;

  @IsOptional()
  @IsObject({ message: 'schema must be a JSON schema object' })
  schema?: Record<string, unknown> | null;

  @IsOptional()
  @IsBoolean()
  strict?: boolean | null;
}

export const RESPONSE_FORMAT_TYPES = ['text', 'json_object', 'json_schema'] as const;

export class ResponseFormatDto {
  @IsIn(RESPONSE_FORMAT_TYPES, { message: `type must be one of ${RESPONSE_FORMAT_TYPES.join(', ')}` })
  type!: (typeof RESPONSE_FORMAT_TYPES)[number];

  /** Required with type json_schema, refused otherwise (checked in openai-input.ts). */
  @IsOptional()
  @ValidateNested()
  @Type(() => JsonSchemaFormatDto)
  json_schema?: JsonSchemaFormatDto | null;
}
