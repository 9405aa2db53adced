/** Creates the Nest application, listens, and provides its graceful shutdown. */
import type { AddressInfo } from 'node:net';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module';
import { configureApp } from './bootstrap';
import type { AppConfig } from './config/app.config';
import { type GracefulShutdown, installGracefulShutdown } from './health/graceful-shutdown';
import { type AppLogger, NestPinoLogger } from './logging/logger';

export interface RunningServer {
  app: NestExpressApplication;
  /** The port actually bound (PORT=0 picks a free one). */
  port: number;
  /** Drains and closes everything (see health/graceful-shutdown.ts); idempotent. */
  shutdown: GracefulShutdown;
}

export async function createApp(config: AppConfig, logger: AppLogger): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config, logger), {
    bodyParser: false,
    logger: new NestPinoLogger(logger),
    abortOnError: false,
  });
  configureApp(app, config, logger);
  return app;
}

/**
 * Nest's enableShutdownHooks() is deliberately not used: it would close the app on SIGTERM
 * without draining. main.ts routes signals to `shutdown` instead.
 */
export async function startServer(config: AppConfig, logger: AppLogger): Promise<RunningServer> {
  const app = await createApp(config, logger);
  await app.listen(config.port, config.host);
  const shutdown = installGracefulShutdown(app, { graceMs: config.shutdownGraceMs, logger });
  const port = (app.getHttpServer().address() as AddressInfo).port;
  const database =
    config.database.kind === 'postgres' ? 'postgres' : config.database.dataDir ? 'pglite' : 'pglite (memory)';
  logger.info(
    {
      port,
      host: config.host,
      database,
      redis: config.redisUrl !== null,
      models: config.models.models.map((m) => m.name),
    },
    'llm-server listening',
  );
  return { app, port, shutdown };
}
