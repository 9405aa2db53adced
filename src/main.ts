/**
 * Entry point: validate configuration first (and exit non-zero naming what is wrong), then
 * build and start the server. Nest is loaded only after the configuration is known to be good.
 * SIGTERM/SIGINT start the graceful shutdown (exit 0 once drained and closed); a second signal
 * exits at once. With WORKERS > 1 this process starts the workers instead (workers.ts).
 */
import 'reflect-metadata';
import cluster from 'node:cluster';
import { ConfigError, loadConfig, type AppConfig } from './infra/config/app.config';
import { type AppLogger, createLogger } from './infra/logging/logger';
import type * as Server from './server';

/** Time allowed to app.close() after the drain before the process gives up on a clean exit. */
const CLOSE_TIMEOUT_MS = 10_000;

function loadConfigOrExit(): AppConfig {
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`llm-server: configuration error: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
}

function exitAfterFlush(logger: AppLogger, code: number): void {
  logger.flush(() => process.exit(code));
}

function handleSignals(logger: AppLogger, config: AppConfig, shutdown: Server.RunningServer['shutdown']): void {
  let signalled = false;
  let firstAt = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    // A worker (WORKERS > 1) hears a terminal's Ctrl-C and the primary passing it on: the same stop.
    if (signalled && cluster.isWorker && Date.now() - firstAt < 1000) return;
    if (signalled) {
      logger.warn({ signal }, 'second signal: exiting without waiting');
      exitAfterFlush(logger, 1);
      return;
    }
    signalled = true;
    firstAt = Date.now();
    const watchdog = setTimeout(() => {
      logger.error('shutdown did not complete in time: exiting');
      exitAfterFlush(logger, 1);
    }, config.shutdownGraceMs + CLOSE_TIMEOUT_MS);
    watchdog.unref();
    shutdown(signal).then(
      () => exitAfterFlush(logger, 0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        exitAfterFlush(logger, 1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger(config.logLevel);
  if (config.workers > 1 && cluster.isPrimary) {
    // The primary serves nothing: it runs the workers (workers.ts), each of which runs this file.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    (require('./workers') as typeof import('./workers')).runWorkers(config, logger, (code) =>
      exitAfterFlush(logger, code),
    );
    return;
  }
  // Loaded only now, so a configuration error exits before Nest and the drivers load.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { startServer } = require('./server') as typeof Server;
  const server = await startServer(config, logger);
  handleSignals(logger, config, server.shutdown);
}

main().catch((error: unknown) => {
  process.stderr.write(`llm-server: failed to start: ${(error as Error).message ?? String(error)}\n`);
  process.exit(1);
});
