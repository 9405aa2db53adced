/** Creates the Nest application and listens. */
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module';
import { configureApp } from './bootstrap';
import type { AppConfig } from './config/app.config';
import { type AppLogger, NestPinoLogger } from './logging/logger';

export async function createApp(config: AppConfig, logger: AppLogger): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config, logger), {
    bodyParser: false,
    logger: new NestPinoLogger(logger),
    abortOnError: false,
  });
  configureApp(app, config, logger);
  return app;
}

export async function startServer(config: AppConfig, logger: AppLogger): Promise<NestExpressApplication> {
  const app = await createApp(config, logger);
  app.enableShutdownHooks();
  await app.listen(config.port, config.host);
  const database = config.database.kind === 'postgres' ? 'postgres' : config.database.dataDir ? 'pglite' : 'pglite (memory)';
  logger.info(
    { port: config.port, host: config.host, database, redis: config.redisUrl !== null, models: config.models.models.map((m) => m.name) },
    'llm-server listening',
  );
  return app;
}
