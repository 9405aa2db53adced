/**
 * Checks an `Authorization: Bearer <secret>` header against a configured secret (the admin
 * token, the metrics token): constant-time, and failures counted per client address (apart from
 * client keys); an address over that limit is refused before the secret is compared.
 */
import { AppError, type ErrorCode } from '../../contracts/app-error';
import { secretsEqual } from './api-key.crypto';
import type { AuthFailureLimiter } from './auth-failure-limiter';

export interface BearerSecretErrors {
  missing: ErrorCode;
  invalid: ErrorCode;
  /** What the secret is called in messages, e.g. "admin token". */
  label: string;
}

/** The secret of an `Authorization: Bearer <secret>` header, or null for any other value. */
export function bearerToken(authorization: string | undefined): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  return match ? match[1] : null;
}

export async function requireBearerSecret(
  address: string | undefined,
  authorization: string | undefined,
  expected: string,
  failures: AuthFailureLimiter,
  errors: BearerSecretErrors,
): Promise<void> {
  failures.assertNotBlocked(address);
  if (!authorization) {
    throw new AppError(errors.missing, `send the ${errors.label} in Authorization: Bearer`);
  }
  const token = bearerToken(authorization);
  if (token === null || !secretsEqual(token, expected)) {
    throw await failures.reject('admin', address, new AppError(errors.invalid, `the ${errors.label} is not valid`));
  }
}
