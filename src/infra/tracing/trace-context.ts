/**
 * injectTraceContext(): W3C `traceparent` (and `tracestate`) on calls to upstreams, so a
 * request's trace continues into vLLM or Ollama (upstream-http.ts). Kept free of any
 * OpenTelemetry import so that, with tracing off, it costs one check; OtelTracing installs the
 * injector when it starts.
 */

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
