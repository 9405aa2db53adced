/**
 * Errors on the Anthropic routes in Anthropic's shape, `{"type": "error", "error": {"type",
 * "message"}, "request_id"}`, with the statuses of API.md's table, so Anthropic SDKs raise their
 * typed errors (BadRequestError, AuthenticationError, RateLimitError, ...). Our stable `code`
 * and the offending `param` stay in the message's prefix and as extra fields.
 */
import { Catch } from '@nestjs/common';
import type { AppError, ErrorCode } from '../../contracts/app-error';
import { errorBody } from '../core/error-body';
import { statusOf } from '../core/error-status';
import { HttpExceptionFilter } from '../errors/http-exception.filter';

/** Anthropic's error types by HTTP status (docs "Errors"). */
const TYPE_BY_STATUS: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  409: 'invalid_request_error',
  413: 'request_too_large',
  415: 'invalid_request_error',
  429: 'rate_limit_error',
  500: 'api_error',
  502: 'api_error',
  503: 'overloaded_error',
  504: 'timeout_error',
};

export function anthropicError(code: ErrorCode, message: string, requestId: string, param: string | null = null) {
  // The envelope's bounds on message and param apply here too.
  const { error } = errorBody(code, message, requestId, param);
  return {
    type: 'error',
    error: { type: TYPE_BY_STATUS[statusOf(code)] ?? 'api_error', message: error.message, code, param: error.param },
    request_id: requestId,
  };
}

@Catch()
export class AnthropicExceptionFilter extends HttpExceptionFilter {
  protected override body(error: AppError, requestId: string): unknown {
    return anthropicError(error.code, error.message, requestId, error.param);
  }
}
