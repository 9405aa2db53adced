/**
 * Validators shared by the OpenAI-compatible request bodies: the sampling fields we honour,
 * and the OpenAI fields we cannot honour, accepted only at their neutral value so SDKs that
 * send defaults keep working while a real use gets a 400 naming the field.
 */
import { Type } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsNumber,
  IsOptional,
  Max,
  Min,
  IsString,
  ValidateNested,
  registerDecorator,
  type ValidationOptions,
} from 'class-validator';
import type { ExtraSampling } from '../../../contracts/generation';
import { OptionalObject, OptionalString } from '../../core/json-fields';
import { SamplingFieldsDto } from '../../generate/sampling-fields.dto';

export const SERVICE_TIERS = ['auto', 'default', 'flex', 'scale', 'priority'];

/** Accepts the field only when `isNeutral(value)`; else "<field>: <reason>". */
export function OnlyNeutral(
  isNeutral: (value: unknown) => boolean,
  reason: string,
  options?: ValidationOptions,
): PropertyDecorator {
  return (target: object, propertyName: string | symbol) => {
    registerDecorator({
      name: 'onlyNeutral',
      target: target.constructor,
      propertyName: String(propertyName),
      options: { message: `${String(propertyName)}: ${reason}`, ...options },
      validator: { validate: (value: unknown) => value === undefined || value === null || isNeutral(value) },
    });
  };
}

export class StreamOptionsDto {
  @IsOptional()
  @IsBoolean()
  include_usage?: boolean | null;

  /** OpenAI pads streamed chunks against side channels; nothing to pad here, accepted. */
  @IsOptional()
  @IsBoolean()
  include_obfuscation?: boolean | null;
}

/** `logit_bias`: token ids (as strings) to a bias of -100..100, at most 300 of them (OpenAI's bounds). */
export function IsLogitBias(): PropertyDecorator {
  return (target: object, propertyName: string | symbol) => {
    registerDecorator({
      name: 'isLogitBias',
      target: target.constructor,
      propertyName: String(propertyName),
      options: { message: 'logit_bias must map at most 300 token ids to numbers from -100 to 100' },
      validator: {
        validate: (value: unknown) =>
          typeof value === 'object' &&
          value !== null &&
          !Array.isArray(value) &&
          Object.keys(value).length <= 300 &&
          Object.entries(value).every(
            ([token, bias]) => /^\d{1,10}$/.test(token) && typeof bias === 'number' && bias >= -100 && bias <= 100,
          ),
      },
    });
  };
}

/** The extra sampling fields of a request as the resolver takes them. */
export function extraSamplingInput(dto: OpenAiSamplingDto & { reasoning_effort?: string | null }): ExtraSampling {
  return {
    ...(dto.presence_penalty != null ? { presencePenalty: dto.presence_penalty } : {}),
    ...(dto.frequency_penalty != null ? { frequencyPenalty: dto.frequency_penalty } : {}),
    ...(dto.logit_bias != null ? { logitBias: dto.logit_bias } : {}),
    ...(dto.reasoning_effort != null ? { reasoningEffort: dto.reasoning_effort } : {}),
  };
}

/** Fields common to /v1/completions and /v1/chat/completions, beyond the shared sampling fields. */
export class OpenAiSamplingDto extends SamplingFieldsDto {
  @IsOptional()
  @ValidateNested()
  @Type(() => StreamOptionsDto)
  stream_options?: StreamOptionsDto | null;

  @IsOptional()
  @IsString()
  user?: string | null;

  @IsOptional()
  @OnlyNeutral((v) => v === 1, 'only n = 1 is supported')
  n?: number | null;

  /** Passed on to vLLM and OpenAI-compatible servers; the others have no logit bias (README). */
  @IsOptional()
  @IsLogitBias()
  logit_bias?: Record<string, number> | null;

  /** Passed on to vLLM, OpenAI-compatible servers and Ollama (README "Official fields"). */
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(-2)
  @Max(2)
  presence_penalty?: number | null;

  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(-2)
  @Max(2)
  frequency_penalty?: number | null;
}

/** A class with a constructor, for the mixin below. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Constructor = new (...args: any[]) => object;

/**
 * The OpenAI request fields that change nothing on this gateway, shared by chat and Responses
 * (README "Official fields": accepted): storage and metadata, routing tiers, prompt caching
 * hints (backends cache prefixes on their own) and moderation settings.
 */
export function WithAcceptedOpenAiFields<T extends Constructor>(Base: T) {
  class AcceptedOpenAiFields extends Base {
    @IsOptional()
    @IsBoolean()
    store?: boolean | null;

    @OptionalObject()
    metadata?: Record<string, string> | null;

    @IsOptional()
    @IsIn(SERVICE_TIERS)
    service_tier?: string | null;

    @OptionalString()
    safety_identifier?: string | null;

    @OptionalString()
    prompt_cache_key?: string | null;

    @OptionalString()
    prompt_cache_retention?: string | null;

    @OptionalObject()
    prompt_cache_options?: Record<string, unknown> | null;

    @OptionalObject()
    moderation?: Record<string, unknown> | null;
  }
  return AcceptedOpenAiFields;
}
