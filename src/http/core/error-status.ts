/**
 * The HTTP side of every error code (API.md's error table): its status and the OpenAI-style
 * envelope `type`. The one place a code becomes a status; modules never see these numbers.
 */
import type { ErrorCode } from '../../contracts/app-error';

export const ERROR_STATUS = {
  invalid_request: { status: 400, type: 'invalid_request_error' },
  missing_api_key: { status: 401, type: 'authentication_error' },
  invalid_api_key: { status: 401, type: 'authentication_error' },
  missing_admin_token: { status: 401, type: 'authentication_error' },
  invalid_admin_token: { status: 401, type: 'authentication_error' },
  missing_metrics_token: { status: 401, type: 'authentication_error' },
  invalid_metrics_token: { status: 401, type: 'authentication_error' },
  quota_exhausted: { status: 402, type: 'quota_error' },
  budget_exhausted: { status: 402, type: 'quota_error' },
  model_not_allowed: { status: 403, type: 'permission_error' },
  not_found: { status: 404, type: 'not_found_error' },
  key_not_found: { status: 404, type: 'not_found_error' },
  team_not_found: { status: 404, type: 'not_found_error' },
  model_not_found: { status: 404, type: 'not_found_error' },
  method_not_allowed: { status: 405, type: 'invalid_request_error' },
  key_revoked: { status: 409, type: 'conflict_error' },
  team_not_empty: { status: 409, type: 'conflict_error' },
  payload_too_large: { status: 413, type: 'invalid_request_error' },
  unsupported_media_type: { status: 415, type: 'invalid_request_error' },
  rate_limit_exceeded: { status: 429, type: 'rate_limit_error' },
  internal_error: { status: 500, type: 'server_error' },
  backend_error: { status: 502, type: 'server_error' },
  backend_unavailable: { status: 503, type: 'server_error' },
  service_unavailable: { status: 503, type: 'server_error' },
  overloaded: { status: 503, type: 'server_error' },
  backend_timeout: { status: 504, type: 'server_error' },
} as const satisfies Record<ErrorCode, { status: number; type: string }>;

export function statusOf(code: ErrorCode): number {
  return ERROR_STATUS[code].status;
}
