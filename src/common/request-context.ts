/** Per-request fields the middleware chain attaches to Express requests. */
import type { Request } from 'express';
import type { AuthenticatedKey } from '../auth/auth.types';

export interface RequestContext {
  requestId: string;
  startedAt: bigint;
  /** Set by the API key guard on authenticated client routes. */
  apiKey?: AuthenticatedKey;
}

export type AppRequest = Request & { ctx: RequestContext };

export function requestIdOf(req: Request): string {
  return (req as Partial<AppRequest>).ctx?.requestId ?? 'unknown';
}
