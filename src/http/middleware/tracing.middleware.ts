/**
 * Opens the server span of every request (when tracing is on): named by the matched route
 * template once known, with its status, or a `client_disconnected` event when the client left
 * first. The rest of the request runs inside it, so the spans of its work nest under it.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Tracing } from '../../infra/tracing/tracing';
import { UNMATCHED_ROUTE } from '../../infra/metrics/metric-names';
import type { AppRequest } from '../core/app-request';
import { clientAddress } from '../core/listeners';
import { routeLabel } from './route-label';

export function tracingMiddleware(tracing: Tracing): RequestHandler | null {
  if (!tracing.enabled) return null;
  return (req: Request, res: Response, next: NextFunction): void => {
    const ctx = (req as Partial<AppRequest>).ctx;
    const span = tracing.startServerSpan({
      method: req.method,
      path: req.path,
      scheme: req.protocol,
      httpVersion: req.httpVersion,
      clientAddress: clientAddress(req),
      headers: req.headers,
      requestId: ctx?.requestId,
      arrivedAt: ctx?.startedAt,
    });
    if (!span) {
      next();
      return;
    }
    if (ctx) ctx.traceIds = span.ids;
    const end = (): void => {
      const route = routeLabel(req);
      span.end({
        route: route === UNMATCHED_ROUTE ? null : route,
        status: res.writableFinished ? res.statusCode : null,
      });
    };
    res.once('finish', end);
    res.once('close', end);
    span.run(next);
  };
}
