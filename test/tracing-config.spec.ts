/**
 * The OTEL_* variables (src/infra/config/tracing.config.ts): tracing is off unless an endpoint is set,
 * the spec's endpoint and precedence rules, and every invalid value stops startup naming its
 * variable, also while tracing is off.
 */
import { ConfigError } from '../src/infra/config/config.errors';
import { readTracingConfig } from '../src/infra/config/tracing.config';

const ENDPOINT = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' };

describe('OpenTelemetry configuration', () => {
  it('is off without an endpoint, and when OTEL_SDK_DISABLED or OTEL_TRACES_EXPORTER=none say so', () => {
    expect(readTracingConfig({})).toBeNull();
    expect(readTracingConfig({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on' })).toBeNull();
    expect(readTracingConfig({ ...ENDPOINT, OTEL_SDK_DISABLED: 'true' })).toBeNull();
    expect(readTracingConfig({ ...ENDPOINT, OTEL_TRACES_EXPORTER: 'none' })).toBeNull();
  });

  it('applies the specification defaults', () => {
    expect(readTracingConfig(ENDPOINT)).toEqual({
      endpoint: 'http://collector:4318/v1/traces',
      protocol: 'http/protobuf',
      headers: {},
      timeoutMs: 10_000,
      serviceName: 'llm-server',
      resourceAttributes: {},
      sampler: 'parentbased_always_on',
      samplerRatio: 1,
      recordContent: false,
      batch: { scheduledDelayMs: 5_000, exportTimeoutMs: 30_000, maxQueueSize: 2_048, maxExportBatchSize: 512 },
    });
  });

  it('takes the batch processor settings from the standard OTEL_BSP_* variables', () => {
    const config = readTracingConfig({
      ...ENDPOINT,
      OTEL_BSP_SCHEDULE_DELAY: '250',
      OTEL_BSP_EXPORT_TIMEOUT: '2000',
      OTEL_BSP_MAX_QUEUE_SIZE: '100',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '10',
    });
    expect(config!.batch).toEqual({
      scheduledDelayMs: 250,
      exportTimeoutMs: 2000,
      maxQueueSize: 100,
      maxExportBatchSize: 10,
    });
  });

  it.each([
    [{ OTEL_BSP_SCHEDULE_DELAY: 'soon' }, /^OTEL_BSP_SCHEDULE_DELAY: expected an integer, got "soon"$/],
    [{ OTEL_BSP_SCHEDULE_DELAY: '-1' }, /^OTEL_BSP_SCHEDULE_DELAY: must be between 0 and/],
    [{ OTEL_BSP_EXPORT_TIMEOUT: '0' }, /^OTEL_BSP_EXPORT_TIMEOUT: must be between 1 and/],
    [{ OTEL_BSP_MAX_QUEUE_SIZE: '0' }, /^OTEL_BSP_MAX_QUEUE_SIZE: must be between 1 and/],
    [{ OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '1.5' }, /^OTEL_BSP_MAX_EXPORT_BATCH_SIZE: expected an integer/],
    [
      { OTEL_BSP_MAX_QUEUE_SIZE: '100', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '512' },
      /^OTEL_BSP_MAX_EXPORT_BATCH_SIZE: must not exceed OTEL_BSP_MAX_QUEUE_SIZE \(100\), got 512$/,
    ],
  ])('refuses a bad OTEL_BSP_* value %j, also while tracing is off', (env, message) => {
    expect(() => readTracingConfig({ ...ENDPOINT, ...env })).toThrow(message);
    expect(() => readTracingConfig(env)).toThrow(ConfigError);
  });

  it('appends /v1/traces to the base endpoint for HTTP, uses the traces endpoint as is, and the base as is for gRPC', () => {
    expect(readTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://c.example/otlp/' })!.endpoint).toBe(
      'https://c.example/otlp/v1/traces',
    );
    expect(
      readTracingConfig({ ...ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://other:4318/custom' })!.endpoint,
    ).toBe('http://other:4318/custom');
    expect(readTracingConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://other:4318/custom' })).not.toBeNull();
    expect(
      readTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }),
    ).toMatchObject({ endpoint: 'http://collector:4317', protocol: 'grpc' });
  });

  it('lets the per-signal variables win, and OTEL_SERVICE_NAME win over service.name', () => {
    const config = readTracingConfig({
      ...ENDPOINT,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_HEADERS: 'a=1,b=2',
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'b=3',
      OTEL_EXPORTER_OTLP_TIMEOUT: '2000',
      OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '3000',
      OTEL_RESOURCE_ATTRIBUTES: 'service.name=ignored,deployment.environment.name=prod%20eu',
      OTEL_SERVICE_NAME: 'gateway',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
      OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: 'true',
    })!;
    expect(config).toMatchObject({
      protocol: 'http/json',
      endpoint: 'http://collector:4318/v1/traces',
      headers: { a: '1', b: '3' },
      timeoutMs: 3000,
      serviceName: 'gateway',
      resourceAttributes: { 'deployment.environment.name': 'prod eu' },
      sampler: 'parentbased_traceidratio',
      samplerRatio: 0.25,
      recordContent: true,
    });
    expect(
      readTracingConfig({ ...ENDPOINT, OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-resource' })!.serviceName,
    ).toBe('from-resource');
  });

  const BAD: [Record<string, string>, RegExp][] = [
    // A common slip: the gRPC habit of host:port without a scheme.
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, /^OTEL_EXPORTER_OTLP_ENDPOINT: must start with http/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://collector' }, /^OTEL_EXPORTER_OTLP_ENDPOINT: must start with http/],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'nope' }, /^OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: not a valid URL/],
    [{ OTEL_EXPORTER_OTLP_PROTOCOL: 'thrift' }, /^OTEL_EXPORTER_OTLP_PROTOCOL: must be one of http\/protobuf/],
    [{ OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http' }, /^OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: must be one of/],
    [{ OTEL_TRACES_SAMPLER: 'jaeger_remote' }, /^OTEL_TRACES_SAMPLER: must be one of always_on/],
    [{ OTEL_TRACES_SAMPLER_ARG: '1.5' }, /^OTEL_TRACES_SAMPLER_ARG: expected a ratio between 0 and 1/],
    [{ OTEL_TRACES_SAMPLER_ARG: 'half' }, /^OTEL_TRACES_SAMPLER_ARG: expected a ratio/],
    [{ OTEL_RESOURCE_ATTRIBUTES: 'team' }, /^OTEL_RESOURCE_ATTRIBUTES: entry 1 is not key=value/],
    [
      { OTEL_RESOURCE_ATTRIBUTES: 'a=%zz' },
      /^OTEL_RESOURCE_ATTRIBUTES: the value of "a" is not valid percent-encoding/,
    ],
    [{ OTEL_EXPORTER_OTLP_HEADERS: 'a=1,=secret' }, /^OTEL_EXPORTER_OTLP_HEADERS: entry 2 is not key=value$/],
    [{ OTEL_EXPORTER_OTLP_TIMEOUT: '0' }, /^OTEL_EXPORTER_OTLP_TIMEOUT: must be between 1/],
    [{ OTEL_SDK_DISABLED: 'maybe' }, /^OTEL_SDK_DISABLED: expected true or false/],
    [{ OTEL_TRACES_EXPORTER: 'console' }, /^OTEL_TRACES_EXPORTER: must be one of otlp, none/],
    [
      { OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: 'yes please' },
      /^OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: expected true or false/,
    ],
  ];

  it.each(BAD)('rejects %j naming the variable, with tracing on or off', (env, message) => {
    for (const base of [{}, ENDPOINT]) {
      let error: unknown;
      try {
        readTracingConfig({ ...base, ...env });
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(message);
    }
  });

  it('never quotes a header value in an error (headers hold collector keys)', () => {
    expect(() => readTracingConfig({ OTEL_EXPORTER_OTLP_HEADERS: 'authorization=%E0%A4%A' })).toThrow(
      /^OTEL_EXPORTER_OTLP_HEADERS: the value of "authorization" is not valid percent-encoding$/,
    );
  });
});
