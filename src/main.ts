/**
 * Entry point: validate configuration first (and exit non-zero naming what is wrong), then
 * build and start the server. Nest is loaded only after the configuration is known to be good.
 * SIGTERM/SIGINT start the graceful shutdown (exit 0 once drained and closed); a second signal
 * exits at once.
 */
import 'reflect-metadata';
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
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      logger.warn({ signal }, 'second signal: exiting without waiting');
      exitAfterFlush(logger, 1);
      return;
    }
    signalled = true;
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
