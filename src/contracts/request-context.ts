/** Per-request state the HTTP layer attaches to every request and the modules read or add to. */
import type { AppError } from './app-error';
import type { AuthenticatedKey } from './authenticated-key';
import type { LimitFigures } from './limit-figures';

/** Time spent waiting on the backend (excluded from the gateway's overhead, gateway-overhead.ts). */
export interface BackendWait {
  /** Completed waits, in ns. */
  waitedNs: bigint;
  /** Start of the wait in progress, if any. */
  since: bigint | null;
}

export interface RequestContext {
  requestId: string;
  /** process.hrtime.bigint() at arrival. */
  startedAt: bigint;
  /** Set by the API key guard on authenticated client routes. */
  apiKey?: AuthenticatedKey;
  /** A body that could not be accepted (415/413/400), raised after authentication. */
  bodyError?: AppError;
  backendWait?: BackendWait;
  /** The request's server span, when tracing is on (for its log line). */
  traceIds?: { trace_id: string; span_id: string };
  /** What the limits said about this request: written as headers when the response starts. */
  limits: LimitFigures;
}
