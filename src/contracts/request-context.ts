/** Per-request fields the middleware chain attaches to Express requests. */
import type { Request } from 'express';
import type { AuthenticatedKey } from './authenticated-key';
import type { AppError } from './app-error';
import type { BackendWait } from './gateway-overhead';

export interface RequestContext {
  requestId: string;
  startedAt: bigint;
  /** Set by the API key guard on authenticated client routes. */
  apiKey?: AuthenticatedKey;
  /** A body that could not be accepted (415/413/400), raised after authentication. */
  bodyError?: AppError;
  /** Time waiting on the backend, excluded from the gateway's overhead (gateway-overhead.ts). */
  backendWait?: BackendWait;
}

export type AppRequest = Request & { ctx: RequestContext };

export function requestIdOf(req: Request): string {
  return (req as Partial<AppRequest>).ctx?.requestId ?? 'unknown';
}
