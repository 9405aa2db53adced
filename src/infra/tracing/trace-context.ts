/**
 * The two places outside the tracing module that see trace context, kept free of any
 * OpenTelemetry import so that, with tracing off, they cost one check:
 * - injectTraceContext(): W3C `traceparent` (and `tracestate`) on calls to upstreams, so a
 *   request's trace continues into vLLM or Ollama (upstream-http.ts);
 * - traceLogFields(): `trace_id` and `span_id` of the request's server span for its log line
 *   (request-log.middleware.ts).
 * OtelTracing installs the injector when it starts and stamps each traced request.
 */
import type { Request } from 'express';

type Injector = (headers: Record<string, string>) => void;

let injector: Injector | null = null;

/** Adds the active span's `traceparent` to outgoing headers; does nothing when tracing is off. */
export function injectTraceContext(headers: Record<string, string>): void {
  injector?.(headers);
}

/** @internal Called by the OpenTelemetry side once it is loaded. */
export function installTraceContextInjector(inject: Injector): void {
  injector = inject;
}

export interface TraceIds {
  trace_id: string;
  span_id: string;
}

const TRACE_IDS = Symbol('traceIds');

/** @internal The server span's ids, stamped on the request when the span starts. */
export function stampTraceIds(req: Request, ids: TraceIds): void {
  (req as Request & { [TRACE_IDS]?: TraceIds })[TRACE_IDS] = ids;
}

/** `{trace_id, span_id}` of the request's server span, or an empty object when it has none. */
export function traceLogFields(req: Request): Partial<TraceIds> {
  return (req as Request & { [TRACE_IDS]?: TraceIds })[TRACE_IDS] ?? {};
}
