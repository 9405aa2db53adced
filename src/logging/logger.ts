/**
 * pino, JSON lines. The logger never receives headers, bodies or keys: call sites pass the
 * fields they mean to log, and request logging (request-log.middleware.ts) picks its own.
 */
import pino, { type Logger } from 'pino';
import type { LoggerService } from '@nestjs/common';
import type { LogLevel } from '../config/app.config';

export type AppLogger = Logger;
export const APP_LOGGER = Symbol('APP_LOGGER');

export function createLogger(level: LogLevel, destination?: pino.DestinationStream): AppLogger {
  return pino(
    {
      level,
      base: { service: 'llm-server' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ sync: false }),
  );
}

/** Routes Nest's own log calls (bootstrap, exceptions) into the same JSON stream. */
export class NestPinoLogger implements LoggerService {
  constructor(private readonly logger: AppLogger) {}

  log(message: unknown, context?: string): void {
    this.logger.info({ context }, String(message));
  }
  error(message: unknown, trace?: string, context?: string): void {
    this.logger.error({ context, trace }, String(message));
  }
  warn(message: unknown, context?: string): void {
    this.logger.warn({ context }, String(message));
  }
  debug(message: unknown, context?: string): void {
    this.logger.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string): void {
    this.logger.trace({ context }, String(message));
  }
}
