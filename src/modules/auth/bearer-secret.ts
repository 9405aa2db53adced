/**
 * Checks `Authorization: Bearer <secret>` against a configured secret (the admin token, the
 * metrics token): constant-time, and failures counted per client address like bad API keys; an
 * address over that limit is refused before the secret is compared.
 */
import { AppError, type ErrorCode } from '../../contracts/app-error';
import type { AppRequest } from '../../contracts/request-context';
import { secretsEqual } from './api-key.crypto';
import { bearerToken } from '../../http/guards/api-key.guard';
import type { AuthFailureLimiter } from './auth-failure-limiter';

export interface BearerSecretErrors {
  missing: ErrorCode;
  invalid: ErrorCode;
  /** What the secret is called in messages, e.g. "admin token". */
  label: string;
}

export async function requireBearerSecret(
  req: AppRequest,
  expected: string,
  failures: AuthFailureLimiter,
  errors: BearerSecretErrors,
): Promise<void> {
  failures.assertNotBlocked(req.ip);
  if (!req.headers.authorization) {
    throw new AppError(errors.missing, `send the ${errors.label} in Authorization: Bearer`);
  }
  const token = bearerToken(req.headers.authorization);
  if (token === null || !secretsEqual(token, expected)) {
    throw await failures.reject(req.ip, new AppError(errors.invalid, `the ${errors.label} is not valid`));
  }
}
