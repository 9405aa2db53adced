/** The route template a request matched, for metrics, traces and logs: never the raw URL. */
import type { Request } from 'express';
import { UNMATCHED_ROUTE } from '../../infra/metrics/metric-names';

interface MatchedRoute {
  path?: unknown;
  methods?: Record<string, boolean>;
}

/**
 * The template of the controller route Express matched (`/admin/keys/:id`), else
 * UNMATCHED_ROUTE. A route answering more than one method is middleware registered for every
 * method (Express `all()`), not a controller route (every controller route here has exactly one
 * method): it may leave its own `req.route` behind when no controller route matches.
 */
export function routeLabel(req: Request): string {
  const route = req.route as MatchedRoute | undefined;
  if (!route || typeof route.path !== 'string') return UNMATCHED_ROUTE;
  if (Object.keys(route.methods ?? {}).length !== 1) return UNMATCHED_ROUTE;
  return route.path;
}
