/**
 * Errors a provider raises. They carry no HTTP status: the generation service decides what
 * a failure means (try the next upstream, fall back, or answer 502/503/504).
 */

/** The upstream could not be reached at all (refused, DNS, reset before any response). Retryable elsewhere. */
export class BackendUnreachableError extends Error {
  override readonly name = 'BackendUnreachableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * The upstream answered, but with an error status, an error line/event, or a body we cannot
 * parse. `message` is already sanitized: safe to show a client (no URLs, keys or stack traces).
 */
export class BackendResponseError extends Error {
  override readonly name = 'BackendResponseError';
  constructor(
    message: string,
    readonly upstreamStatus: number | null = null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** An in-process engine is saturated (its bounded queue is full). */
export class BackendBusyError extends Error {
  override readonly name = 'BackendBusyError';
}

/**
 * The backend cannot do what the request asks (tools on a model whose chat template has no
 * function calling, say). Not an outage: the client gets 400 naming `param`.
 */
export class UnsupportedRequestError extends Error {
  override readonly name = 'UnsupportedRequestError';
  constructor(
    message: string,
    readonly param: string,
  ) {
    super(message);
  }
}
