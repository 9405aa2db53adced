/** How backend failures and aborts become the API's error codes. */
import { AppError } from '../../contracts/app-error';
import { DeadlineExceeded } from '../../contracts/generation';
import {
  BackendBusyError,
  BackendResponseError,
  BackendUnreachableError,
  UnsupportedRequestError,
} from '../../contracts/backend-errors';

/** Failures after which the next upstream (then the next fallback model) is tried. */
export function isRetryable(error: unknown): boolean {
  return error instanceof BackendUnreachableError || error instanceof BackendBusyError;
}

export function toGenerationError(error: unknown, model: string): AppError {
  if (error instanceof AppError) return error;
  if (error instanceof DeadlineExceeded) {
    return new AppError('backend_timeout', `model "${model}" did not answer in time`);
  }
  if (error instanceof UnsupportedRequestError) {
    return new AppError('invalid_request', `model "${model}": ${error.message}`, { param: error.param });
  }
  if (isRetryable(error)) {
    return new AppError('backend_unavailable', `no upstream of model "${model}" could be reached`);
  }
  if (error instanceof BackendResponseError && error.upstreamStatus === 400) {
    // The backend refused the request itself (e.g. the prompt exceeds its context window).
    return new AppError('invalid_request', `model "${model}" rejected the request: ${error.message}`);
  }
  if (error instanceof BackendResponseError) {
    return new AppError('backend_error', `the backend of model "${model}" failed: ${error.message}`);
  }
  return new AppError('internal_error', 'internal error', { cause: error });
}
