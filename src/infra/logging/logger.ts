/**
 * pino, JSON lines. The logger never receives headers, bodies or keys: call sites pass the
 * fields they mean to log, and request logging (request-log.middleware.ts) picks its own.
 */
import pino, { type Logger } from 'pino';
import type { LoggerService } from '@nestjs/common';
import type { LogLevel } from '../config/app.config';

export type AppLogger = Logger;
export const APP_LOGGER = Symbol('APP_LOGGER');

/**
 * Fields of errors that can hold request data (SQL text and its parameters: key hashes, names;
 * PostgreSQL's `detail` quotes the offending values). Never logged.
 */
const UNSAFE_ERROR_FIELDS = new Set(['query', 'parameters', 'detail', 'where', 'internalQuery', 'driverError']);

/** pino's error serializer without the fields above, on the error and its causes. */
export function serializeError(error: unknown, depth = 0): unknown {
  if (!(error instanceof Error) || depth > 3) return error;
  const serialized = pino.stdSerializers.err(error) as unknown as Record<string, unknown>;
  for (const field of Object.keys(serialized)) if (UNSAFE_ERROR_FIELDS.has(field)) delete serialized[field];
  if (error.cause !== undefined) serialized.cause = serializeError(error.cause, depth + 1);
  return serialized;
}

export function createLogger(level: LogLevel, destination?: pino.DestinationStream): AppLogger {
  return pino(
    {
      level,
      base: { service: 'llm-server' },
      serializers: { err: serializeError },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ sync: false }),
  );
}

/** Routes Nest's own log calls (bootstrap, exceptions) into the same JSON stream. */
export class NestPinoLogger implements LoggerService {
  constructor(private readonly logger: AppLogger) {}

  /**
   * Nest's own progress lines (every module loaded, every route mapped: ~50 at startup) go to
   * debug; the server says it is ready in one line of its own (server.ts).
   */
  log(message: unknown, context?: string): void {
    this.logger.debug({ context }, String(message));
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
