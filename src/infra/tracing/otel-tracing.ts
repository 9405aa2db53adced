/**
 * Tracing on: the OpenTelemetry SDK behind the Tracing API. Loaded (with the SDK) only when an
 * OTLP endpoint is configured (tracing.module.ts).
 *
 * - One tracer provider per application, with the configured sampler, resource and a batching
 *   OTLP exporter. It is not registered as OpenTelemetry's global provider: contexts go through
 *   one process-wide AsyncLocalStorage context manager and every call passes its context
 *   explicitly, so two applications in one process (tests) never see each other's spans.
 * - One SERVER span per HTTP request (requestMiddleware): W3C `traceparent`/`tracestate` from the
 *   client continue its trace; named `{method} {route template}` once routing is known; HTTP
 *   semantic-convention attributes; status ERROR on 5xx. Never the query string, headers or body.
 * - W3C propagation to upstreams through trace-context.ts.
 */
import {
  type Span,
  type SpanOptions as OtelSpanOptions,
  type TextMapGetter,
  type Tracer,
  createContextKey,
  defaultTextMapSetter,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import type { IncomingHttpHeaders } from 'node:http';
import type { TracingConfig } from '../config/tracing.config';
import type { AppLogger } from '../logging/logger';
import { createSpanExporter } from './otel-exporter';
import { GEN_AI, LLM } from './trace-attributes';
import { installTraceContextInjector } from './trace-context';
import {
  type IncomingRequestInfo,
  NOOP_SPAN,
  type ServerSpan,
  type SpanOptions,
  type TraceAttributes,
  type TraceContent,
  type TraceSpan,
  Tracing,
} from './tracing';

/** Process-wide, like OpenTelemetry's own globals: one async context and one propagator. */
const contextManager = new AsyncLocalStorageContextManager().enable();
const propagator = new W3CTraceContextPropagator();
installTraceContextInjector((headers) => propagator.inject(contextManager.active(), headers, defaultTextMapSetter));

const REQUEST_SPAN = createContextKey('llm-server request span');

const headerGetter: TextMapGetter<IncomingHttpHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

function sampler(config: TracingConfig): Sampler {
  const ratio = new TraceIdRatioBasedSampler(config.samplerRatio);
  switch (config.sampler) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio;
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio });
  }
}

function cleanAttributes(
  attributes: TraceAttributes | undefined,
): Record<string, NonNullable<TraceAttributes[string]>> {
  const clean: Record<string, NonNullable<TraceAttributes[string]>> = {};
  for (const [key, value] of Object.entries(attributes ?? {}))
    if (value !== null && value !== undefined) clean[key] = value;
  return clean;
}

function errorType(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') return code;
    if (error instanceof Error) return error.name;
  }
  return 'error';
}

/** GenAI message JSON (gen_ai.input.messages / gen_ai.output.messages). */
function messagesJson(content: TraceContent, defaultRole: string, finishReason?: string): string {
  const messages = typeof content === 'string' ? [{ role: defaultRole, content }] : content;
  return JSON.stringify(
    messages.map(({ role, content: text }) => ({
      role,
      parts: [{ type: 'text', content: text }],
      ...(finishReason ? { finish_reason: finishReason } : {}),
    })),
  );
}

class OtelSpan implements TraceSpan {
  constructor(
    readonly inner: Span,
    private readonly contentAllowed: boolean,
  ) {}

  get recording(): boolean {
    return this.inner.isRecording();
  }

  setAttributes(attributes: TraceAttributes): void {
    this.inner.setAttributes(cleanAttributes(attributes));
  }

  addEvent(name: string, attributes?: TraceAttributes): void {
    this.inner.addEvent(name, cleanAttributes(attributes));
  }

  fail(error: unknown): void {
    this.inner.setAttribute('error.type', errorType(error));
    this.inner.setStatus({
      code: SpanStatusCode.ERROR,
      message: error instanceof Error ? error.message : undefined,
    });
  }

  recordContent(content: { input?: TraceContent; output?: TraceContent; finishReason?: string }): void {
    if (!this.contentAllowed || !this.recording) return;
    if (content.input !== undefined) this.inner.setAttribute(GEN_AI.inputMessages, messagesJson(content.input, 'user'));
    if (content.output !== undefined) {
      this.inner.setAttribute(GEN_AI.outputMessages, messagesJson(content.output, 'assistant', content.finishReason));
    }
  }

  end(): void {
    this.inner.end();
  }
}

export class OtelTracing extends Tracing {
  readonly enabled = true;
  private readonly provider: TracerProvider;
  private readonly tracer: Tracer;
  private stopping: Promise<void> | null = null;

  constructor(
    private readonly config: TracingConfig,
    logger: AppLogger,
  ) {
    super();
    this.provider = new TracerProvider({
      sampler: sampler(config),
      resource: defaultResource().merge(
        resourceFromAttributes({ ...config.resourceAttributes, 'service.name': config.serviceName }),
      ),
      spanProcessors: [
        // Every setting passed explicitly from the validated config (tracing.config.ts), so the
        // SDK never reads OTEL_BSP_* behind it with its own, silent, parsing.
        new BatchSpanProcessor({
          exporter: createSpanExporter(config, logger),
          scheduledDelayMillis: config.batch.scheduledDelayMs,
          exportTimeoutMillis: config.batch.exportTimeoutMs,
          maxQueueSize: config.batch.maxQueueSize,
          maxExportBatchSize: config.batch.maxExportBatchSize,
        }),
      ],
    });
    this.tracer = this.provider.getTracer('llm-server');
  }

  span<T>(name: string, attributes: TraceAttributes, fn: (span: TraceSpan) => T, options?: SpanOptions): T {
    const span = this.startSpan(name, attributes, options) as OtelSpan;
    const fail = (error: unknown): never => {
      span.fail(error);
      span.end();
      throw error;
    };
    let result: T;
    try {
      result = this.withSpan(span, () => fn(span));
    } catch (error) {
      return fail(error);
    }
    if (result instanceof Promise) {
      return result.then((value: unknown) => {
        span.end();
        return value;
      }, fail) as T;
    }
    span.end();
    return result;
  }

  startSpan(name: string, attributes?: TraceAttributes, options?: SpanOptions): TraceSpan {
    const spanOptions: OtelSpanOptions = {
      kind: options?.kind === 'client' ? SpanKind.CLIENT : SpanKind.INTERNAL,
      attributes: cleanAttributes(attributes),
    };
    return new OtelSpan(this.tracer.startSpan(name, spanOptions, contextManager.active()), this.config.recordContent);
  }

  withSpan<T>(span: TraceSpan, fn: () => T): T {
    if (!(span instanceof OtelSpan)) return fn();
    return contextManager.with(trace.setSpan(contextManager.active(), span.inner), fn);
  }

  bindIterable<T>(span: TraceSpan, iterable: AsyncIterable<T>): AsyncIterable<T> {
    if (!(span instanceof OtelSpan)) return iterable;
    return {
      [Symbol.asyncIterator]: () => {
        const iterator = this.withSpan(span, () => iterable[Symbol.asyncIterator]());
        return {
          next: () => this.withSpan(span, () => iterator.next()),
          return: (value?: unknown) =>
            this.withSpan(span, () => iterator.return?.(value) ?? Promise.resolve({ done: true as const, value })),
          throw: (error?: unknown) =>
            this.withSpan(span, () => iterator.throw?.(error) ?? Promise.reject(error as Error)),
        } as AsyncIterator<T>;
      },
    };
  }

  current(): TraceSpan {
    const span = trace.getSpan(contextManager.active());
    return span ? new OtelSpan(span, this.config.recordContent) : NOOP_SPAN;
  }

  requestSpan(): TraceSpan {
    const span = contextManager.active().getValue(REQUEST_SPAN) as Span | undefined;
    return span ? new OtelSpan(span, this.config.recordContent) : NOOP_SPAN;
  }

  /** Failed exports are logged by the exporter, not thrown at the caller. */
  flush(): Promise<void> {
    return this.provider.forceFlush().catch(() => undefined);
  }

  /** Flushes pending spans; bounded, so an unreachable collector cannot hold the shutdown. */
  shutdown(): Promise<void> {
    this.stopping ??= new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.config.timeoutMs + 1000);
      timer.unref();
      this.provider.shutdown().then(
        () => resolve(),
        () => resolve(),
      );
    });
    return this.stopping;
  }

  startServerSpan(request: IncomingRequestInfo): ServerSpan {
    const parent = propagator.extract(ROOT_CONTEXT, request.headers, headerGetter);
    // The request arrived before the body was read and this middleware ran: start the span then.
    const startTime =
      request.arrivedAt === undefined
        ? undefined
        : Date.now() - Number(process.hrtime.bigint() - request.arrivedAt) / 1e6;
    const span = this.tracer.startSpan(
      request.method,
      {
        kind: SpanKind.SERVER,
        startTime,
        attributes: cleanAttributes({
          'http.request.method': request.method,
          'url.path': request.path,
          'url.scheme': request.scheme,
          'network.protocol.version': request.httpVersion,
          'client.address': request.clientAddress,
          'user_agent.original': request.headers['user-agent'],
          [LLM.requestId]: request.requestId,
        }),
      },
      parent,
    );
    const { traceId, spanId } = span.spanContext();
    let ended = false;
    return {
      ids: { trace_id: traceId, span_id: spanId },
      run: (fn) => contextManager.with(trace.setSpan(parent, span).setValue(REQUEST_SPAN, span), fn),
      end: ({ route, status }) => {
        if (ended) return;
        ended = true;
        if (route !== null) {
          span.updateName(`${request.method} ${route}`);
          span.setAttribute('http.route', route);
        }
        if (status !== null) {
          span.setAttribute('http.response.status_code', status);
          if (status >= 500) {
            span.setAttribute('error.type', String(status));
            span.setStatus({ code: SpanStatusCode.ERROR });
          }
        } else {
          // The client went away before the response ended (logged and counted as 499).
          span.addEvent('client_disconnected');
        }
        span.end();
      },
    };
  }
}
