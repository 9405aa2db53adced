/**
 * The one place errors become HTTP responses. Every error, on every route, leaves in the
 * envelope of API.md with the status of its code (error-status.ts) and the headers of its
 * figures (limit-headers.ts); anything unexpected becomes an opaque 500 logged with the request
 * id.
 */
import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, Inject } from '@nestjs/common';
import type { Response } from 'express';
import { AppError, type ErrorCode } from '../../contracts/app-error';
import { DependencyDown } from '../../infra/lifecycle/dependency-health';
import { DatabaseRejected } from '../../infra/database/database-errors';
import { APP_LOGGER, type AppLogger } from '../../infra/logging/logger';
import { type AppRequest, requestIdOf } from '../core/app-request';
import { errorBody } from '../core/error-body';
import { statusOf } from '../core/error-status';

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: 'invalid_request',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limit_exceeded',
};

/** How long a client should wait before retrying while a dependency is down. */
const RETRY_AFTER_OUTAGE_SECONDS = 2;

function toAppError(exception: unknown): AppError | null {
  if (exception instanceof AppError) return exception;
  if (exception instanceof DependencyDown) {
    return new AppError('service_unavailable', `the ${exception.dependency} is unavailable; retry shortly`, {
      figures: { retryAfterSeconds: RETRY_AFTER_OUTAGE_SECONDS },
    });
  }
  if (exception instanceof DatabaseRejected) return new AppError('invalid_request', exception.message);
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    if (status === 404) return new AppError('not_found', 'no such route');
    const code = CODE_BY_STATUS[status];
    if (code) return new AppError(code, status === 400 ? 'bad request' : exception.message);
  }
  return null;
}

@Catch()
export class HttpExceptionFilter implements ExceptionFilter {
  constructor(@Inject(APP_LOGGER) private readonly logger: AppLogger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const req = http.getRequest<AppRequest>();
    const res = http.getResponse<Response>();
    const requestId = requestIdOf(req);
    const error = toAppError(exception) ?? new AppError('internal_error', `internal error (request id ${requestId})`);
    if (error.code === 'internal_error') {
      const original = exception instanceof AppError && exception.cause !== undefined ? exception.cause : exception;
      const cause = original instanceof Error ? original : new Error(String(original));
      this.logger.error({ request_id: requestId, err: cause }, 'unhandled error');
    }
    if (res.headersSent) {
      // A stream already started: the streaming code reports errors itself; just end it.
      res.end();
      return;
    }
    // The error's figures join the request's (the rate-limit window, say): the head carries both.
    if (req.ctx) Object.assign(req.ctx.limits, error.figures);
    res.status(statusOf(error.code)).json(this.body(error, requestId));
  }

  /** The error's body: the envelope of API.md (routes of another API's shape override it). */
  protected body(error: AppError, requestId: string): unknown {
    return errorBody(error.code, error.message, requestId, error.param);
  }
}
