/**
 * One log line per request when the response is done (or the client went away): method,
 * path (never the query string), route template, status, duration and request id. Headers
 * and bodies are never logged, so keys and tokens cannot leak here. With tracing on, `trace_id`
 * and `span_id` of the request's server span.
 */
import type { NextFunction, Request, Response } from 'express';
import type { AppRequest } from '../core/app-request';
import type { AppLogger } from '../../infra/logging/logger';

export function requestLogMiddleware(logger: AppLogger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    // 'close' follows 'finish' on every response, and alone when the client cut it off.
    res.once('close', () => {
      const ctx = (req as AppRequest).ctx;
      const durationMs = Number(process.hrtime.bigint() - ctx.startedAt) / 1e6;
      const status = res.writableFinished ? res.statusCode : 499; // 499: client closed first
      const fields = {
        request_id: ctx.requestId,
        method: req.method,
        path: req.path,
        route: (req.route as { path?: string } | undefined)?.path ?? null,
        status,
        duration_ms: Math.round(durationMs * 100) / 100,
        key_id: ctx.apiKey?.id,
        ...ctx.traceIds,
      };
      if (status >= 500) logger.error(fields, 'request');
      else logger.info(fields, 'request');
    });
    next();
  };
}
