/**
 * Builds the HTTP application: the Express instance Nest runs on and the middleware chain every
 * request passes before Nest routing, in one place and in order. Shared by server.ts and the
 * in-process test harness so both serve the same app.
 */
import type { Server } from 'node:http';
import type { INestApplication } from '@nestjs/common';
import { ExpressAdapter, type NestExpressApplication } from '@nestjs/platform-express';
import express from 'express';
import type { AppConfig } from '../../infra/config/app.config';
import type { AppLogger } from '../../infra/logging/logger';
import { HttpMetrics } from '../../infra/metrics/http-metrics';
import { Tracing } from '../../infra/tracing/tracing';
import { httpMetricsMiddleware } from '../middleware/http-metrics.middleware';
import { jsonBodyMiddleware } from '../middleware/json-body.middleware';
import { requestContextMiddleware } from '../middleware/request-context.middleware';
import { requestLogMiddleware } from '../middleware/request-log.middleware';
import { securityHeadersMiddleware } from '../middleware/security-headers';
import { tracingMiddleware } from '../middleware/tracing.middleware';
import { answerClientErrors } from './client-errors';

/**
 * The Express instance Nest runs on. Routing is case-sensitive (`/V1/GENERATE` reaches no route
 * and is 404, as on OpenAI's API); a trailing slash reaches the same route. Either way checks
 * belong to routes, not to spellings, so no spelling escapes them. Set before the router exists.
 */
export function createHttpAdapter(): ExpressAdapter {
  const instance = express();
  instance.set('case sensitive routing', true);
  return new ExpressAdapter(instance);
}

/**
 * The middleware chain, in order:
 * 1. the request's context and id (first: everything after may log, count or fail);
 * 2. its log line, then its HTTP metrics, both written when the response ends;
 * 3. the security headers;
 * 4. the JSON body (its errors are kept and raised after authentication, see json-body.middleware.ts);
 * 5. the server span, when tracing is on (the rest of the request runs inside it).
 * Then Nest: the global guards (app.module.ts), the validation pipe, the route.
 */
export function configureApp(app: NestExpressApplication, config: AppConfig, logger: AppLogger): INestApplication {
  answerClientErrors(app.getHttpServer() as Server);
  app.set('trust proxy', config.trustProxyHops);
  app.set('etag', false);
  app.use(requestContextMiddleware);
  app.use(requestLogMiddleware(logger));
  app.use(httpMetricsMiddleware(app.get(HttpMetrics)));
  app.use(
    securityHeadersMiddleware({
      contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    }),
  );
  app.use(jsonBodyMiddleware(config.bodyLimitBytes));
  const traced = tracingMiddleware(app.get(Tracing));
  if (traced) app.use(traced);
  return app;
}
