/**
 * The error every module throws. It carries a stable code and no HTTP knowledge: the global
 * filter (http-exception.filter.ts) maps codes to statuses and the error envelope.
 */
export const ERROR_CODES = {
  invalid_request: { status: 400, type: 'invalid_request_error' },
  missing_api_key: { status: 401, type: 'authentication_error' },
  invalid_api_key: { status: 401, type: 'authentication_error' },
  missing_admin_token: { status: 401, type: 'authentication_error' },
  invalid_admin_token: { status: 401, type: 'authentication_error' },
  missing_metrics_token: { status: 401, type: 'authentication_error' },
  invalid_metrics_token: { status: 401, type: 'authentication_error' },
  quota_exhausted: { status: 402, type: 'quota_error' },
  model_not_allowed: { status: 403, type: 'permission_error' },
  not_found: { status: 404, type: 'not_found_error' },
  key_not_found: { status: 404, type: 'not_found_error' },
  model_not_found: { status: 404, type: 'not_found_error' },
  method_not_allowed: { status: 405, type: 'invalid_request_error' },
  key_revoked: { status: 409, type: 'conflict_error' },
  payload_too_large: { status: 413, type: 'invalid_request_error' },
  unsupported_media_type: { status: 415, type: 'invalid_request_error' },
  rate_limit_exceeded: { status: 429, type: 'rate_limit_error' },
  internal_error: { status: 500, type: 'server_error' },
  backend_error: { status: 502, type: 'server_error' },
  backend_unavailable: { status: 503, type: 'server_error' },
  service_unavailable: { status: 503, type: 'server_error' },
  overloaded: { status: 503, type: 'server_error' },
  backend_timeout: { status: 504, type: 'server_error' },
} as const satisfies Record<string, { status: number; type: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class AppError extends Error {
  override readonly name = 'AppError';

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly options: {
      /** The offending request field, for validation errors. */
      param?: string | null;
      /** Extra response headers, e.g. Retry-After. */
      headers?: Record<string, string>;
      cause?: unknown;
    } = {},
  ) {
    super(message, { cause: options.cause });
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }
}

export function invalidRequest(message: string, param: string | null = null): AppError {
  return new AppError('invalid_request', message, { param });
}
