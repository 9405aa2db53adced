/**
 * Turns a validated request into what the pipeline runs: resolves the model (404/403, and 400
 * when the model is of the other kind), applies the bounds that depend on configuration and the
 * model (MAX_PROMPT_CHARS, max_new_tokens), then the defaults.
 */
import { Inject, Injectable } from '@nestjs/common';
import { AppError, invalidRequest } from '../../contracts/app-error';
import type { AuthenticatedKey } from '../../contracts/authenticated-key';
import type {
  ChatMessage,
  EmbeddingParams,
  ExtraSampling,
  GenerationParams,
  ResponseFormat,
  ToolsParams,
} from '../../contracts/generation';
import type { ModelConfig, ModelKind } from '../../contracts/model-config';
import type { SchedulingClass } from '../../contracts/scheduling';
import type { AppConfig } from '../../infra/config/app.config';
import { APP_CONFIG } from '../../infra/config/config.module';
import { ModelRegistry } from '../scheduling/model-registry';

/** A generation request in any of the API's shapes (/v1/generate, OpenAI completions or chat). */
export interface GenerationInput {
  model?: string | null;
  /** The prompt; '' for chat requests. */
  prompt: string;
  /** Chat requests: the conversation (non-empty). */
  messages?: ChatMessage[];
  maxNewTokens?: number | null;
  temperature?: number | null;
  topP?: number | null;
  topK?: number | null;
  stop?: string | string[] | null;
  seed?: number | null;
  stream?: boolean | null;
  /** Chat requests: the tools offered. */
  tools?: ToolsParams;
  responseFormat?: ResponseFormat;
  /**
   * An output limit above the model's max_new_tokens is lowered to it instead of refused
   * (/v1/responses and /v1/messages: coding agents send large fixed limits; API.md "Compatible
   * APIs"). Quotas and budgets then reserve the lowered value.
   */
  lowerMaxNewTokens?: boolean;
  extra?: ExtraSampling;
}

/** The request field names of the caller's API, for `param` in 400 errors. */
export interface FieldNames {
  prompt: string;
  maxNewTokens: string;
}

const GENERATE_FIELDS: FieldNames = { prompt: 'prompt', maxNewTokens: 'max_new_tokens' };

export interface ResolvedRequest {
  model: ModelConfig;
  params: GenerationParams;
  stream: boolean;
  /** The key's place in the model's queue. */
  scheduling: SchedulingClass;
  /**
   * Set for an embedding request: the pipeline then embeds instead of generating (params only
   * carries the input text, for logs and cut estimates).
   */
  embedding?: EmbeddingParams;
}

/** The key's place in a model's queue: its flow, priority class and share. */
function schedulingClass(key: AuthenticatedKey): SchedulingClass {
  return { keyId: key.id, priority: key.priority, weight: key.weight };
}

@Injectable()
export class RequestResolver {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly registry: ModelRegistry,
  ) {}

  /**
   * The model a request names (else the default model), if the key may use it (404, 403) and
   * it serves this kind of request (400 naming `model`: chat models generate, embedding
   * models embed).
   */
  modelFor(name: string | null | undefined, key: AuthenticatedKey, kind: ModelKind): ModelConfig {
    const wanted = name ?? this.registry.defaultModel;
    const model = this.registry.find(wanted);
    if (!model) throw new AppError('model_not_found', `no model named "${wanted}" is configured`);
    if (key.models !== null && !key.models.includes(model.name)) {
      throw new AppError('model_not_allowed', `this API key may not use model "${model.name}"`);
    }
    if (model.kind !== kind) {
      throw invalidRequest(
        model.kind === 'embedding'
          ? `model "${model.name}" is an embedding model: it serves only /v1/embeddings`
          : `model "${model.name}" is not an embedding model (kind: ${model.kind} in models.yaml)`,
        'model',
      );
    }
    return model;
  }

  /**
   * An embedding request: the model (which must be of kind `embedding`) and the input bound by
   * MAX_PROMPT_CHARS (all texts together, or all token ids together).
   */
  resolveEmbedding(
    input: { model?: string | null; input: string[] | number[][]; dimensions?: number | null },
    key: AuthenticatedKey,
  ): ResolvedRequest {
    const size = input.input.reduce((sum, item) => sum + item.length, 0);
    if (size > this.config.maxPromptChars) {
      throw invalidRequest(
        `input must be at most ${this.config.maxPromptChars} characters (or token ids) in all`,
        'input',
      );
    }
    const model = this.modelFor(input.model, key, 'embedding');
    const texts = input.input.filter((item): item is string => typeof item === 'string');
    return {
      model,
      stream: false,
      scheduling: schedulingClass(key),
      // The text stands in for a prompt in logs and in the estimate of a request cut short.
      params: { prompt: texts.join('\n'), maxNewTokens: 0, temperature: 0, topP: 1, topK: 0, stop: [], seed: null },
      embedding: { input: input.input, dimensions: input.dimensions ?? null },
    };
  }

  /** Applies the bounds that depend on configuration and the model, then the defaults. */
  resolve(input: GenerationInput, key: AuthenticatedKey, fields: FieldNames = GENERATE_FIELDS): ResolvedRequest {
    const promptChars = input.messages
      ? input.messages.reduce((sum, m) => sum + m.content.length, 0)
      : input.prompt.length;
    if (promptChars > this.config.maxPromptChars) {
      throw invalidRequest(`${fields.prompt} must be at most ${this.config.maxPromptChars} characters`, fields.prompt);
    }
    const model = this.modelFor(input.model, key, 'chat');
    const asked = input.maxNewTokens ?? model.defaultMaxNewTokens;
    const maxNewTokens = input.lowerMaxNewTokens ? Math.min(asked, model.maxNewTokens) : asked;
    if (maxNewTokens > model.maxNewTokens) {
      throw invalidRequest(
        `${fields.maxNewTokens} must be at most ${model.maxNewTokens} for model "${model.name}"`,
        fields.maxNewTokens,
      );
    }
    const stop = input.stop ?? [];
    return {
      model,
      stream: input.stream ?? false,
      scheduling: schedulingClass(key),
      params: {
        prompt: input.prompt,
        ...(input.messages ? { messages: input.messages } : {}),
        maxNewTokens,
        temperature: input.temperature ?? 1.0,
        topP: input.topP ?? 1.0,
        // -1 and 0 both mean "disabled"; providers see 0 only.
        topK: Math.max(0, input.topK ?? 0),
        stop: typeof stop === 'string' ? [stop] : stop,
        seed: input.seed ?? null,
        ...(input.tools ? { tools: input.tools } : {}),
        ...(input.responseFormat ? { responseFormat: input.responseFormat } : {}),
        ...extraOf(input.extra),
      },
    };
  }
}

/** Only the extra fields with a value that changes something (see ExtraSampling). */
function extraOf(extra: ExtraSampling | undefined): { extra?: ExtraSampling } {
  if (!extra) return {};
  const kept: ExtraSampling = {};
  if (extra.presencePenalty) kept.presencePenalty = extra.presencePenalty;
  if (extra.frequencyPenalty) kept.frequencyPenalty = extra.frequencyPenalty;
  if (extra.logitBias && Object.keys(extra.logitBias).length > 0) kept.logitBias = extra.logitBias;
  if (extra.reasoningEffort) kept.reasoningEffort = extra.reasoningEffort;
  if (extra.thinking !== undefined) kept.thinking = extra.thinking;
  return Object.keys(kept).length > 0 ? { extra: kept } : {};
}
