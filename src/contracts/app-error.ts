/**
 * The error every module throws: a stable code, a message for the client, the offending field
 * and the figures a client needs to act on it (which limit, what is left, when to retry). It
 * knows nothing of HTTP: http/core/error-status.ts maps codes to statuses and envelope types,
 * and http/core/limit-headers.ts turns figures into headers.
 */
import type { LimitFigures } from './limit-figures';

export const ERROR_CODES = [
  'invalid_request',
  'missing_api_key',
  'invalid_api_key',
  'missing_admin_token',
  'invalid_admin_token',
  'missing_metrics_token',
  'invalid_metrics_token',
  'quota_exhausted',
  'budget_exhausted',
  'team_not_found',
  'team_not_empty',
  'model_not_allowed',
  'not_found',
  'key_not_found',
  'model_not_found',
  'method_not_allowed',
  'key_revoked',
  'payload_too_large',
  'unsupported_media_type',
  'rate_limit_exceeded',
  'internal_error',
  'backend_error',
  'backend_unavailable',
  'service_unavailable',
  'overloaded',
  'backend_timeout',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface AppErrorOptions {
  /** The offending request field, for validation errors. */
  param?: string | null;
  /** Limit figures for the response (quota state, Retry-After, ...). */
  figures?: LimitFigures;
  cause?: unknown;
}

export class AppError extends Error {
  override readonly name = 'AppError';
  readonly param: string | null;
  readonly figures: LimitFigures;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: AppErrorOptions = {},
  ) {
    super(message, { cause: options.cause });
    this.param = options.param ?? null;
    this.figures = options.figures ?? {};
  }
}

export function invalidRequest(message: string, param: string | null = null): AppError {
  return new AppError('invalid_request', message, { param });
}
