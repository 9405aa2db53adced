/**
 * Creates the Nest application, listens (on PORT, and on ADMIN_PORT when set: the admin API and
 * /metrics live only there), and provides its graceful shutdown.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module';
import { configureApp, createHttpAdapter } from './http/server/http-app';
import { answerClientErrors } from './http/server/client-errors';
import { markAdminListener } from './http/core/listeners';
import type { AppConfig } from './infra/config/app.config';
import { type GracefulShutdown, installGracefulShutdown } from './http/server/graceful-shutdown';
import { type AppLogger, NestPinoLogger } from './infra/logging/logger';

export interface RunningServer {
  app: NestExpressApplication;
  /** The port actually bound (PORT=0 picks a free one). */
  port: number;
  /** The admin port actually bound, when ADMIN_PORT is set. */
  adminPort: number | null;
  /** Drains and closes everything (see health/graceful-shutdown.ts); idempotent. */
  shutdown: GracefulShutdown;
}

export async function createApp(config: AppConfig, logger: AppLogger): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config, logger), createHttpAdapter(), {
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
  const servers: Server[] = [app.getHttpServer() as Server];
  if (config.adminPort !== null) {
    const admin = createServer(app.getHttpAdapter().getInstance());
    markAdminListener(admin);
    answerClientErrors(admin);
    servers.push(admin);
  }
  for (const server of servers) applyConnectionTimeouts(server, config.keepAliveTimeoutMs);
  await app.listen(config.port, config.host);
  if (servers[1]) await listen(servers[1], config.adminPort!, config.host);
  const shutdown = installGracefulShutdown(app, servers, { graceMs: config.shutdownGraceMs, logger });
  const port = (servers[0].address() as AddressInfo).port;
  const adminPort = servers[1] ? (servers[1].address() as AddressInfo).port : null;
  const database =
    config.database.kind === 'postgres' ? 'postgres' : config.database.dataDir ? 'pglite' : 'pglite (memory)';
  const where = startupAddresses(config, port, adminPort);
  logger.info(
    {
      url: where.url,
      console_url: where.consoleUrl,
      admin_token: where.adminToken,
      port,
      admin_port: adminPort,
      host: config.host,
      database,
      redis: config.redis?.kind ?? false,
      models: config.models.models.map((m) => m.name),
    },
    `llm-server ready at ${where.url} (admin console ${where.consoleUrl}; admin token ${where.adminToken})`,
  );
  return { app, port, adminPort, shutdown };
}

/**
 * Idle keep-alive above a load balancer's own idle timeout (else the LB reuses a connection we
 * just closed: an intermittent 502), and a headers timeout above it, as Node requires.
 */
export function applyConnectionTimeouts(server: Server, keepAliveTimeoutMs: number): void {
  server.keepAliveTimeout = keepAliveTimeoutMs;
  server.headersTimeout = keepAliveTimeoutMs + 1000;
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * What the startup line tells a newcomer: where to send requests, where the console is, and
 * where the admin token comes from (never the token). A wildcard host is shown as localhost.
 */
export function startupAddresses(
  config: Pick<AppConfig, 'host' | 'adminTokenSource'>,
  port: number,
  adminPort: number | null,
): { url: string; consoleUrl: string; adminToken: string } {
  const host = ['0.0.0.0', '::', ''].includes(config.host)
    ? 'localhost'
    : config.host.includes(':')
      ? `[${config.host}]`
      : config.host;
  const url = `http://${host}:${port}`;
  const source = config.adminTokenSource;
  return {
    url,
    consoleUrl: `http://${host}:${adminPort ?? port}/admin/ui`,
    adminToken:
      source === 'env'
        ? 'from ADMIN_TOKEN'
        : `in ${source.file}${source.created ? ' (generated now: ADMIN_TOKEN is not set)' : ''}`,
  };
}
