/**
 * OpenTelemetry tracing settings, from the standard OTEL_* variables (the OpenTelemetry SDK
 * environment specification), read here like every other setting. Tracing is off unless an OTLP
 * endpoint is set; OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turn it off again.
 * Every variable is validated even when tracing is off: a typo is a startup error, not a
 * surprise on the day tracing is switched on.
 */
import { ConfigError } from './config.errors';
import { type Env, readBool, readEnum, readInt, readOptionalString, readString, readUrl } from './env.parsers';

export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json', 'grpc'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

export const TRACE_SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;
export type TraceSampler = (typeof TRACE_SAMPLERS)[number];

export interface TracingConfig {
  /** Where spans go: the full OTLP/HTTP traces URL (…/v1/traces), or the gRPC collector URL. */
  endpoint: string;
  protocol: OtlpProtocol;
  /** Sent with every export (often a collector's API key): never logged. */
  headers: Record<string, string>;
  /** Bound of one export request. */
  timeoutMs: number;
  serviceName: string;
  /** OTEL_RESOURCE_ATTRIBUTES; service.name comes from serviceName. */
  resourceAttributes: Record<string, string>;
  sampler: TraceSampler;
  /** The ratio of the traceidratio samplers (1 for the others). */
  samplerRatio: number;
  /**
   * OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: the only way prompt and output text get
   * into spans. Off by default: spans carry sizes, models and outcomes, never content.
   */
  recordContent: boolean;
  /** The batch span processor: the standard OTEL_BSP_* variables, with the SDK's defaults. */
  batch: BatchSettings;
}

export interface BatchSettings {
  /** OTEL_BSP_SCHEDULE_DELAY: the most a span waits before its batch is sent. */
  scheduledDelayMs: number;
  /** OTEL_BSP_EXPORT_TIMEOUT: the bound of one batch's export. */
  exportTimeoutMs: number;
  /** OTEL_BSP_MAX_QUEUE_SIZE: spans held for export; more are dropped, never waited for. */
  maxQueueSize: number;
  /** OTEL_BSP_MAX_EXPORT_BATCH_SIZE: spans per export; at most the queue size. */
  maxExportBatchSize: number;
}

/** The OpenTelemetry SDK's defaults (the environment variable specification). */
export const DEFAULT_BATCH: BatchSettings = {
  scheduledDelayMs: 5_000,
  exportTimeoutMs: 30_000,
  maxQueueSize: 2_048,
  maxExportBatchSize: 512,
};

function readBatchSettings(env: Env): BatchSettings {
  const batch = {
    scheduledDelayMs: readInt(env, 'OTEL_BSP_SCHEDULE_DELAY', DEFAULT_BATCH.scheduledDelayMs, { min: 0, max: 600_000 }),
    exportTimeoutMs: readInt(env, 'OTEL_BSP_EXPORT_TIMEOUT', DEFAULT_BATCH.exportTimeoutMs, { min: 1, max: 600_000 }),
    maxQueueSize: readInt(env, 'OTEL_BSP_MAX_QUEUE_SIZE', DEFAULT_BATCH.maxQueueSize, { min: 1, max: 1_000_000 }),
    maxExportBatchSize: readInt(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', DEFAULT_BATCH.maxExportBatchSize, {
      min: 1,
      max: 1_000_000,
    }),
  };
  // The SDK would quietly cut the batch to the queue size; a setting that cannot hold is an error.
  if (batch.maxExportBatchSize > batch.maxQueueSize) {
    throw new ConfigError(
      `OTEL_BSP_MAX_EXPORT_BATCH_SIZE: must not exceed OTEL_BSP_MAX_QUEUE_SIZE (${batch.maxQueueSize}), got ${batch.maxExportBatchSize}`,
    );
  }
  return batch;
}

const DEFAULT_SERVICE_NAME = 'llm-server';
/** OTLP/HTTP puts traces under this path of OTEL_EXPORTER_OTLP_ENDPOINT (the spec's rule). */
const HTTP_TRACES_PATH = 'v1/traces';

const readHttpUrl = (env: Env, name: string): string | null => readUrl(env, name, ['http:', 'https:']);

/**
 * `key=value,key2=value2` with percent-encoded values: the format of OTEL_RESOURCE_ATTRIBUTES
 * and OTEL_EXPORTER_OTLP_HEADERS. Messages never quote a value (headers may hold secrets).
 */
export function parseKeyValueList(env: Env, name: string): Record<string, string> {
  const value = readOptionalString(env, name);
  const pairs: Record<string, string> = {};
  if (value === null) return pairs;
  for (const [index, item] of value.split(',').entries()) {
    if (item.trim() === '') continue;
    const eq = item.indexOf('=');
    const key = eq > 0 ? item.slice(0, eq).trim() : '';
    if (key === '') throw new ConfigError(`${name}: entry ${index + 1} is not key=value`);
    try {
      pairs[key] = decodeURIComponent(item.slice(eq + 1).trim());
    } catch {
      throw new ConfigError(`${name}: the value of "${key}" is not valid percent-encoding`);
    }
  }
  return pairs;
}

function readRatio(env: Env, name: string): number | null {
  const value = readOptionalString(env, name);
  if (value === null) return null;
  const ratio = Number(value);
  if (!/^\d*\.?\d+$/.test(value) || !(ratio >= 0 && ratio <= 1)) {
    throw new ConfigError(`${name}: expected a ratio between 0 and 1, got "${value}"`);
  }
  return ratio;
}

/** The traces URL: the signal-specific variable as is, else the base endpoint plus /v1/traces for HTTP. */
function tracesEndpoint(env: Env, protocol: OtlpProtocol): string | null {
  const specific = readHttpUrl(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const base = readHttpUrl(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  if (specific !== null) return specific;
  if (base === null) return null;
  if (protocol === 'grpc') return base;
  return `${base.replace(/\/+$/, '')}/${HTTP_TRACES_PATH}`;
}

/** Tracing settings, or null when tracing is off. */
export function readTracingConfig(env: Env): TracingConfig | null {
  const disabled = readBool(env, 'OTEL_SDK_DISABLED', false);
  const exporter = readEnum(env, 'OTEL_TRACES_EXPORTER', ['otlp', 'none'], 'otlp');
  const protocol = readEnum(
    env,
    'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL',
    OTLP_PROTOCOLS,
    readEnum(env, 'OTEL_EXPORTER_OTLP_PROTOCOL', OTLP_PROTOCOLS, 'http/protobuf'),
  );
  const endpoint = tracesEndpoint(env, protocol);
  const headers = {
    ...parseKeyValueList(env, 'OTEL_EXPORTER_OTLP_HEADERS'),
    ...parseKeyValueList(env, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS'),
  };
  const timeoutMs = readInt(
    env,
    'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT',
    readInt(env, 'OTEL_EXPORTER_OTLP_TIMEOUT', 10_000, { min: 1, max: 600_000 }),
    { min: 1, max: 600_000 },
  );
  const resourceAttributes = parseKeyValueList(env, 'OTEL_RESOURCE_ATTRIBUTES');
  // The spec: OTEL_SERVICE_NAME wins over service.name in OTEL_RESOURCE_ATTRIBUTES.
  const serviceName = readString(env, 'OTEL_SERVICE_NAME', resourceAttributes['service.name'] ?? DEFAULT_SERVICE_NAME);
  delete resourceAttributes['service.name'];
  const sampler = readEnum(env, 'OTEL_TRACES_SAMPLER', TRACE_SAMPLERS, 'parentbased_always_on');
  const ratio = readRatio(env, 'OTEL_TRACES_SAMPLER_ARG');
  const recordContent = readBool(env, 'OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT', false);
  const batch = readBatchSettings(env);

  if (disabled || exporter === 'none' || endpoint === null) return null;
  return {
    endpoint,
    protocol,
    headers,
    timeoutMs,
    serviceName,
    resourceAttributes,
    sampler,
    samplerRatio: sampler.endsWith('traceidratio') ? (ratio ?? 1) : 1,
    recordContent,
    batch,
  };
}
