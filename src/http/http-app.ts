/**
 * Builds the HTTP application: the Express middleware chain every request passes before Nest
 * routing. Shared by main.ts and the in-process test harness so both serve the same app.
 */
import type { Server } from 'node:http';
import type { INestApplication } from '@nestjs/common';
import { answerClientErrors } from './errors/client-errors';
import { ExpressAdapter, type NestExpressApplication } from '@nestjs/platform-express';
import express from 'express';
import type { AppConfig } from '../infra/config/app.config';
import { jsonBodyMiddleware } from './middleware/json-body.middleware';
import { requestIdMiddleware } from './middleware/request-id.middleware';
import { securityHeadersMiddleware } from './middleware/security-headers';
import type { AppLogger } from '../infra/logging/logger';
import { requestLogMiddleware } from './middleware/request-log.middleware';

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

export function configureApp(app: NestExpressApplication, config: AppConfig, logger: AppLogger): INestApplication {
  answerClientErrors(app.getHttpServer() as Server);
  app.set('trust proxy', config.trustProxyHops);
  app.set('etag', false);
  app.use(requestIdMiddleware);
  app.use(requestLogMiddleware(logger));
  app.use(
    securityHeadersMiddleware({
      contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    }),
  );
  app.use(jsonBodyMiddleware(config.bodyLimitBytes));
  return app;
}
