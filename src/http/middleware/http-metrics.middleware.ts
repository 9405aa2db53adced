/**
 * Counts every HTTP request when its response ends, whatever answered it: a controller, a
 * guard or pipe error, the body checks, or the router's 404. The `route` label is the matched
 * route template (route-label.ts), never the raw URL. A response the client cut off before it
 * ended counts as status 499 (the request log does the same).
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { gatewayOverheadMs } from '../../contracts/gateway-overhead';
import type { HttpMetrics } from '../../infra/metrics/http-metrics';
import type { AppRequest } from '../core/app-request';
import { routeLabel } from './route-label';

export function httpMetricsMiddleware(metrics: HttpMetrics): RequestHandler {
  return (req: Request, res: Response, next: NextFunction): void => {
    // 'close' follows 'finish' on every response, and alone when the client cut it off.
    res.once('close', () => {
      const labels = {
        method: req.method,
        route: routeLabel(req),
        status_code: String(res.writableFinished ? res.statusCode : 499),
      };
      const ctx = (req as Partial<AppRequest>).ctx;
      metrics.requests.inc(labels);
      if (!ctx) return; // the request-context middleware, first in the chain, stamps the arrival time
      metrics.duration.observe(labels, Number(process.hrtime.bigint() - ctx.startedAt) / 1e9);
      metrics.overhead.observe({ route: labels.route }, gatewayOverheadMs(ctx) / 1000);
    });
    next();
  };
}
