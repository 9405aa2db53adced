/**
 * Reads and validates config/models.yaml. Every failure names the file, the model and the
 * field, because an operator fixing a bad deploy should not have to guess.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from './config.errors';
import type { Env } from './env.parsers';
import { asMapping, FieldReader } from './yaml-fields';
import {
  HTTP_PROVIDERS,
  parseBreaker,
  parseLlamaCpp,
  parseLoadBalancing,
  parsePricing,
  parseQueue,
  parseUpstreams,
} from './model-sections';
import {
  PROVIDER_KINDS,
  MODEL_KINDS,
  type ModelConfig,
  type ModelKind,
  type ModelsConfig,
  type ProviderKind,
} from '../../contracts/model-config';

const TOP_LEVEL_FIELDS = ['default_model', 'models'];
const MODEL_FIELDS = [
  'name',
  'kind',
  'provider',
  'upstream_model',
  'upstreams',
  'base_url',
  'api_key_env',
  'max_new_tokens',
  'default_max_new_tokens',
  'timeout_ms',
  'cache_ttl_seconds',
  'required',
  'fallbacks',
  'breaker',
  'max_in_flight',
  'queue',
  'load_balancing',
  'upstream_metrics',
  'pricing',
  // llama-cpp only
  'model_path',
  'threads',
  'context_size',
  'sequences',
  'max_queue',
  'generate_if_missing',
];
/** The server's own secrets: an upstream key must never be one of them (it is sent to the upstream). */
const SERVER_SECRETS = ['ADMIN_TOKEN', 'METRICS_TOKEN', 'DATABASE_URL', 'REDIS_URL'];
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;

function parseModel(raw: unknown, index: number, file: string, env: Env, baseDir: string): ModelConfig {
  const mapping = asMapping(raw);
  if (!mapping) throw new ConfigError(`${file}: models[${index}]: must be a mapping`);
  const label = typeof mapping.name === 'string' ? `model "${mapping.name}"` : `models[${index}]`;
  const where = `${file}: ${label}`;
  const reader: FieldReader = new FieldReader(mapping, where);
  reader.rejectUnknown(MODEL_FIELDS);

  const name = reader.string('name');
  if (!MODEL_NAME.test(name)) {
    reader.fail('name', 'use 1-128 characters of letters, digits and . _ : / -');
  }
  const providerValue = reader.string('provider');
  if (!(PROVIDER_KINDS as readonly string[]).includes(providerValue)) {
    reader.fail('provider', `unknown provider "${providerValue}" (expected ${PROVIDER_KINDS.join(', ')})`);
  }
  const provider = providerValue as ProviderKind;
  const kindValue = reader.optionalString('kind') ?? 'chat';
  if (!(MODEL_KINDS as readonly string[]).includes(kindValue)) {
    reader.fail('kind', `unknown kind "${kindValue}" (expected ${MODEL_KINDS.join(' or ')})`);
  }
  const upstreamModel = reader.optionalString('upstream_model');
  if (HTTP_PROVIDERS.includes(provider) && upstreamModel === null) {
    reader.fail('upstream_model', `is required for provider ${provider}`);
  }

  const apiKeyEnv = reader.optionalString('api_key_env');
  let apiKey: string | null = null;
  if (apiKeyEnv !== null) {
    if (!HTTP_PROVIDERS.includes(provider)) reader.fail('api_key_env', `not used by provider ${provider}`);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(apiKeyEnv)) reader.fail('api_key_env', 'must be an environment variable name');
    if (SERVER_SECRETS.includes(apiKeyEnv)) {
      reader.fail(
        'api_key_env',
        `must not name the server's own secret ${apiKeyEnv} (it would be sent to the upstream)`,
      );
    }
    apiKey = env[apiKeyEnv]?.trim() || null;
    if (apiKey === null) reader.fail('api_key_env', `environment variable ${apiKeyEnv} is not set`);
  }

  const maxNewTokens = reader.int('max_new_tokens', 2048, 1, 1_000_000);
  const defaultMaxNewTokens = reader.int('default_max_new_tokens', Math.min(256, maxNewTokens), 1);
  if (defaultMaxNewTokens > maxNewTokens) {
    reader.fail('default_max_new_tokens', `must not exceed max_new_tokens (${maxNewTokens})`);
  }
  if (!HTTP_PROVIDERS.includes(provider)) {
    for (const field of ['max_in_flight', 'queue', 'load_balancing']) {
      if (reader.has(field))
        reader.fail(field, `not used by provider ${provider} (in-process engines queue on their own)`);
    }
  }
  const upstreamMetrics = reader.bool('upstream_metrics', false);
  if (upstreamMetrics && provider !== 'vllm') reader.fail('upstream_metrics', 'only used by provider vllm');
  const fallbacks = reader.list('fallbacks').map((entry, i): string => {
    if (typeof entry !== 'string' || entry === '') reader.fail(`fallbacks[${i}]`, 'must be a model name');
    return entry;
  });

  return {
    name,
    kind: kindValue as ModelKind,
    provider,
    upstreamModel: upstreamModel ?? name,
    upstreams: parseUpstreams(reader, provider, where),
    apiKey,
    maxNewTokens,
    defaultMaxNewTokens,
    timeoutMs: reader.int('timeout_ms', 60_000, 1, 3_600_000),
    cacheTtlSeconds: reader.has('cache_ttl_seconds') ? reader.int('cache_ttl_seconds', 0, 0, 31_536_000) : null,
    required: reader.bool('required', false),
    fallbacks,
    breaker: parseBreaker(reader, where),
    queue: parseQueue(reader, where),
    loadBalancing: parseLoadBalancing(reader),
    upstreamMetrics,
    pricing: parsePricing(reader, where),
    llamaCpp: parseLlamaCpp(reader, provider, baseDir),
  };
}

function checkReferences(config: ModelsConfig): void {
  const names = new Set<string>();
  for (const model of config.models) {
    if (names.has(model.name)) {
      throw new ConfigError(`${config.file}: model "${model.name}": field "name": duplicate model name`);
    }
    names.add(model.name);
  }
  for (const model of config.models) {
    model.fallbacks.forEach((fallback, i) => {
      const where = `${config.file}: model "${model.name}": field "fallbacks[${i}]"`;
      if (!names.has(fallback)) throw new ConfigError(`${where}: names no model ("${fallback}")`);
      if (fallback === model.name) throw new ConfigError(`${where}: a model cannot fall back to itself`);
      const kind = config.models.find((other) => other.name === fallback)?.kind;
      if (kind !== model.kind) {
        throw new ConfigError(`${where}: "${fallback}" is of kind ${kind}, "${model.name}" of kind ${model.kind}`);
      }
    });
  }
  if (!names.has(config.defaultModel)) {
    throw new ConfigError(`${config.file}: field "default_model": names no model ("${config.defaultModel}")`);
  }
}

/**
 * Parses the registry text. `baseDir` resolves relative model paths (llama-cpp): they are
 * relative to the working directory, like every other path the server is given.
 */
export function parseModelsYaml(text: string, file: string, env: Env, baseDir: string): ModelsConfig {
  let document: unknown;
  try {
    document = parseYaml(text, { uniqueKeys: true });
  } catch (error) {
    throw new ConfigError(`${file}: not valid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  const root = asMapping(document);
  if (!root) throw new ConfigError(`${file}: must be a mapping with default_model and models`);
  const reader: FieldReader = new FieldReader(root, file);
  reader.rejectUnknown(TOP_LEVEL_FIELDS);
  const rawModels = reader.list('models');
  if (rawModels.length === 0) reader.fail('models', 'must list at least one model');
  const models = rawModels.map((raw, index) => parseModel(raw, index, file, env, baseDir));
  const config: ModelsConfig = { file, defaultModel: reader.string('default_model'), models };
  checkReferences(config);
  return config;
}

export function loadModelsFile(file: string, env: Env, cwd: string): ModelsConfig {
  const path = isAbsolute(file) ? file : resolve(cwd, file);
  if (!existsSync(path)) throw new ConfigError(`MODELS_FILE: ${file} does not exist`);
  return parseModelsYaml(readFileSync(path, 'utf8'), file, env, cwd);
}
