/**
 * The tracing API the rest of the server calls (inject `Tracing`). Two implementations: the
 * no-op one below when tracing is off (nothing of OpenTelemetry is loaded, each call is a plain
 * function call), and OtelTracing (otel-tracing.ts) when an OTLP endpoint is configured.
 *
 *   await this.tracing.span(SPANS.quota, { [LLM.keyId]: key.id }, () => this.quota.reserve(key));
 *   this.tracing.current().addEvent(EVENTS.firstToken);
 *
 * Spans made here are children of the active span (the request's server span, or a span opened
 * by span()/withSpan() around the caller), so the request's trace nests without passing spans
 * around.
 */
import type { IncomingHttpHeaders } from 'node:http';

export type TraceAttributeValue = string | number | boolean | string[] | number[];
/** null and undefined values are dropped, so optional fields can be passed as they are. */
export type TraceAttributes = Readonly<Record<string, TraceAttributeValue | null | undefined>>;

/** Prompt or output: a plain text, or chat messages. */
export type TraceContent = string | ReadonlyArray<{ role: string; content: string }>;

export interface SpanOptions {
  /** `client` for calls to another service (the upstream call); default `internal`. */
  kind?: 'internal' | 'client';
}

export interface TraceSpan {
  /** False when tracing is off or the trace is not sampled: skip work done only for attributes. */
  readonly recording: boolean;
  setAttributes(attributes: TraceAttributes): void;
  addEvent(name: string, attributes?: TraceAttributes): void;
  /** Marks the span failed: status ERROR and `error.type` (the error's code, else its name). */
  fail(error: unknown): void;
  /**
   * Prompt and output text (gen_ai.input.messages / gen_ai.output.messages). Recorded only when
   * OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true; otherwise this does nothing.
   */
  recordContent(content: { input?: TraceContent; output?: TraceContent; finishReason?: string }): void;
  end(): void;
}

export abstract class Tracing {
  /** Whether spans are exported at all (an OTLP endpoint is configured). */
  abstract readonly enabled: boolean;

  /**
   * Runs `fn` inside a new child span of the active one, which is active during `fn`. The span
   * ends when `fn` returns or, when it returns a promise, when that settles; a throw or a
   * rejection marks it failed (and is rethrown unchanged).
   */
  abstract span<T>(name: string, attributes: TraceAttributes, fn: (span: TraceSpan) => T, options?: SpanOptions): T;

  /** A child span of the active one that the caller ends (for work outliving one call: streams). */
  abstract startSpan(name: string, attributes?: TraceAttributes, options?: SpanOptions): TraceSpan;

  /** Runs `fn` with `span` active, so spans and upstream calls made inside become its children. */
  abstract withSpan<T>(span: TraceSpan, fn: () => T): T;

  /**
   * `iterable` with each step run while `span` is active: for streams, whose work (the upstream
   * request included) happens when the consumer pulls, in the consumer's context otherwise.
   */
  abstract bindIterable<T>(span: TraceSpan, iterable: AsyncIterable<T>): AsyncIterable<T>;

  /** The active span (a no-op span when there is none). */
  abstract current(): TraceSpan;

  /** The server span of the request being handled (a no-op span outside a request). */
  abstract requestSpan(): TraceSpan;

  /** Exports every ended span now. */
  abstract flush(): Promise<void>;

  /** Flushes and stops exporting (application shutdown). */
  abstract shutdown(): Promise<void>;

  /** @internal Opens the server span of an incoming request (the HTTP layer's middleware); null when off. */
  abstract startServerSpan(request: IncomingRequestInfo): ServerSpan | null;
}

/** What the server span of a request records about it when it starts. */
export interface IncomingRequestInfo {
  method: string;
  path: string;
  scheme: string;
  httpVersion: string;
  clientAddress: string | undefined;
  headers: IncomingHttpHeaders;
  requestId: string | undefined;
  /** process.hrtime.bigint() at arrival: the span starts then, not when the middleware runs. */
  arrivedAt: bigint | undefined;
}

/** A request's server span: the handler runs inside it; it ends with the route and status. */
export interface ServerSpan {
  readonly ids: { trace_id: string; span_id: string };
  /** Runs the rest of the request's handling with this span (and the request span) active. */
  run(fn: () => void): void;
  /** `status` null: the client went away before the response ended. `route` null: no route matched. */
  end(outcome: { route: string | null; status: number | null }): void;
}

const NOOP_SPAN: TraceSpan = Object.freeze({
  recording: false,
  setAttributes: () => undefined,
  addEvent: () => undefined,
  fail: () => undefined,
  recordContent: () => undefined,
  end: () => undefined,
});

/** Tracing off: every call is a plain call, nothing is recorded, no OpenTelemetry code is loaded. */
export class NoopTracing extends Tracing {
  readonly enabled = false;

  span<T>(_name: string, _attributes: TraceAttributes, fn: (span: TraceSpan) => T): T {
    return fn(NOOP_SPAN);
  }

  startSpan(): TraceSpan {
    return NOOP_SPAN;
  }

  withSpan<T>(_span: TraceSpan, fn: () => T): T {
    return fn();
  }

  bindIterable<T>(_span: TraceSpan, iterable: AsyncIterable<T>): AsyncIterable<T> {
    return iterable;
  }

  current(): TraceSpan {
    return NOOP_SPAN;
  }

  requestSpan(): TraceSpan {
    return NOOP_SPAN;
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }

  startServerSpan(): null {
    return null;
  }
}

export { NOOP_SPAN };
