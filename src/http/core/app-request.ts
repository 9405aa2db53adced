/** An Express request as this server sees it: with the per-request context (contracts) attached. */
import type { Request } from 'express';
import type { RequestContext } from '../../contracts/request-context';

export type AppRequest = Request & { ctx: RequestContext };

export function requestIdOf(req: Request): string {
  return (req as Partial<AppRequest>).ctx?.requestId ?? 'unknown';
}
