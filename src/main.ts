/**
 * Entry point: validate configuration first (and exit non-zero naming what is wrong), then
 * build and start the server. Nest is loaded only after the configuration is known to be good.
 */
import 'reflect-metadata';
import { ConfigError, loadConfig, type AppConfig } from './config/app.config';
import { createLogger } from './logging/logger';
import type * as Server from './server';

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

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger(config.logLevel);
  if (typeof config.adminTokenSource === 'object' && config.adminTokenSource.created) {
    logger.warn(
      { file: config.adminTokenSource.file },
      'ADMIN_TOKEN is not set: generated an admin token into this file (`npm run keys -- create --name me` uses it)',
    );
  }
  // Loaded only now, so a configuration error exits before Nest and the drivers load.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { startServer } = require('./server') as typeof Server;
  await startServer(config, logger);
}

main().catch((error: unknown) => {
  process.stderr.write(`llm-server: failed to start: ${(error as Error).message ?? String(error)}\n`);
  process.exit(1);
});
