/**
 * Counts every HTTP request when its response ends, whatever answered it: a controller, a
 * guard or pipe error, the body checks, or the router's 404. The `route` label is the matched
 * route template (`/admin/keys/:id`), never the raw URL; requests that matched no route share
 * UNMATCHED_ROUTE. A response the client cut off before it ended counts as status 499 (the
 * request log does the same). Applied to every path by MetricsModule.
 */
import { Inject, Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { AppRequest } from '../../contracts/request-context';
import { gatewayOverheadMs } from '../../contracts/gateway-overhead';
import { HTTP_DURATION_BUCKETS, METRICS, OVERHEAD_BUCKETS, UNMATCHED_ROUTE } from '../../infra/metrics/metric-names';
import { METRICS_REGISTRY } from '../../infra/metrics/metrics.registry';

type HttpLabels = 'method' | 'route' | 'status_code';

interface MatchedRoute {
  path?: unknown;
  methods?: Record<string, boolean>;
}

/**
 * The template of the controller route Express matched. Nest registers middleware for every
 * method (this one included) as an Express `all()` route, which leaves its own `req.route`
 * behind when no controller route matches: a route answering more than one method is
 * middleware, not a controller route (every controller route here has exactly one method).
 */
export function routeLabel(req: Request): string {
  const route = req.route as MatchedRoute | undefined;
  if (!route || typeof route.path !== 'string') return UNMATCHED_ROUTE;
  if (Object.keys(route.methods ?? {}).length !== 1) return UNMATCHED_ROUTE;
  return route.path;
}

@Injectable()
export class HttpMetrics {
  readonly requests: Counter<HttpLabels>;
  readonly duration: Histogram<HttpLabels>;
  readonly overhead: Histogram<'route'>;

  constructor(@Inject(METRICS_REGISTRY) registry: Registry) {
    const { httpRequests, httpDuration } = METRICS;
    this.requests = new Counter<HttpLabels>({
      name: httpRequests.name,
      help: httpRequests.help,
      labelNames: httpRequests.labels,
      registers: [registry],
    });
    this.duration = new Histogram<HttpLabels>({
      name: httpDuration.name,
      help: httpDuration.help,
      labelNames: httpDuration.labels,
      buckets: HTTP_DURATION_BUCKETS,
      registers: [registry],
    });
    const { gatewayOverhead } = METRICS;
    this.overhead = new Histogram<'route'>({
      name: gatewayOverhead.name,
      help: gatewayOverhead.help,
      labelNames: gatewayOverhead.labels,
      buckets: OVERHEAD_BUCKETS,
      registers: [registry],
    });
  }
}

@Injectable()
export class HttpMetricsMiddleware implements NestMiddleware {
  constructor(private readonly metrics: HttpMetrics) {}

  use(req: Request, res: Response, next: NextFunction): void {
    // 'close' follows 'finish' on every response, and alone when the client cut it off.
    res.once('close', () => {
      const labels = {
        method: req.method,
        route: routeLabel(req),
        status_code: String(res.writableFinished ? res.statusCode : 499),
      };
      const ctx = (req as Partial<AppRequest>).ctx;
      this.metrics.requests.inc(labels);
      if (!ctx) return; // requestIdMiddleware, first in the chain, stamps the arrival time
      this.metrics.duration.observe(labels, Number(process.hrtime.bigint() - ctx.startedAt) / 1e9);
      this.metrics.overhead.observe({ route: labels.route }, gatewayOverheadMs(ctx) / 1000);
    });
    next();
  }
}
