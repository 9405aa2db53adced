/**
 * Shared HTTP plumbing for providers that talk to a remote upstream (vLLM, Ollama,
 * OpenAI-compatible servers):
 *
 * - `UpstreamHttp`: one keep-alive `undici.Pool` per upstream base URL, a request helper that
 *   classifies failures into the BackendError classes, and sanitized error messages.
 * - reading the bodies (JSON, SSE, NDJSON) is upstream-body.ts.
 *
 * Failure classification (see backend.errors.ts):
 * - the signal aborted (client disconnect, timeout, shutdown): the signal's `reason` is rethrown
 *   unchanged, whatever undici raised, so the caller can tell the cases apart;
 * - no response at all (refused, DNS, reset or connect timeout before the response head):
 *   BackendUnreachableError;
 * - a non-2xx status, an error event, garbage, or a connection lost mid-body: BackendResponseError
 *   whose message is safe for clients: never the URL, headers or the upstream API key, at most a
 *   short control-character-free excerpt of the upstream's own error message.
 *
 * undici's own headers/body timeouts are disabled: the caller bounds every request with its
 * AbortSignal (the model's `timeout_ms`, the readiness timeout), which may exceed undici's 300 s
 * defaults for long generations.
 */
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import { injectTraceContext } from '../../infra/tracing/trace-context';
import { BackendResponseError, BackendUnreachableError } from '../../contracts/backend-errors';
import { cleanExcerpt, isRecord, parseJson, upstreamErrorMessage } from './upstream-body';

/** Error codes that mean "no usable connection to the upstream". */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ETIMEDOUT',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
]);

/** Most bytes read from an error response body (the rest is discarded). */
const MAX_ERROR_BODY_BYTES = 16 * 1024;
/** Most bytes of a non-streamed JSON body. */
const MAX_JSON_BODY_BYTES = 32 * 1024 * 1024;
const MID_RESPONSE_MESSAGE = 'upstream connection closed mid-response';

function errorCode(err: unknown): string | undefined {
  if (!isRecord(err) && !(err instanceof Error)) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  // Happy-eyeballs connects (several addresses) fail with an AggregateError.
  if (err instanceof AggregateError) {
    for (const inner of err.errors) {
      const innerCode = errorCode(inner);
      if (innerCode) return innerCode;
    }
  }
  return err instanceof Error && err.cause !== undefined ? errorCode(err.cause) : undefined;
}

/**
 * Guards iteration over a response body: an abort rethrows the signal's reason, a lost
 * connection becomes BackendResponseError (the response had started, so the upstream was
 * reachable), BackendErrors pass through.
 */
async function* guardBody(body: AsyncIterable<Uint8Array>, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of body) {
      yield chunk;
    }
  } catch (err) {
    signal.throwIfAborted();
    if (err instanceof BackendResponseError) throw err;
    throw new BackendResponseError(MID_RESPONSE_MESSAGE, null, { cause: err });
  }
}

/** How long an upstream may take to end its body after its final event before the connection is cut. */
export const AFTER_END_GRACE_MS = 1000;

/**
 * After a stream's final event: reads what is left of the body in the background, so a well
 * behaved upstream's connection goes back to the pool, and cuts the connection if the body has
 * not ended within AFTER_END_GRACE_MS. Never delays the answer and never rejects.
 */
export function releaseAfterEnd(res: UpstreamResponse, rest: AsyncIterator<unknown>): void {
  const timer = setTimeout(() => res.cancel(), AFTER_END_GRACE_MS);
  void (async () => {
    try {
      while (!(await rest.next()).done) {
        // discarded: nothing after the final event counts
      }
    } catch {
      // a cut or a broken connection after the answer is complete changes nothing
    } finally {
      clearTimeout(timer);
    }
  })();
}

export interface UpstreamHttpOptions {
  /** Sent as `Authorization: Bearer <apiKey>` when set; never appears in errors. */
  apiKey?: string | null;
  /** Extra undici pool options (tests, tuning). */
  pool?: Pool.Options;
}

export interface UpstreamRequest {
  method: 'GET' | 'POST';
  /** Path below the base URL, starting with `/`. */
  path: string;
  /** Serialized as JSON when present. */
  json?: unknown;
  signal: AbortSignal;
  /** Called once the whole request was written to the upstream connection. */
  onSent?: () => void;
}

/** A 2xx response whose body has not been read yet. */
export interface UpstreamResponse {
  status: number;
  /** The body, guarded: aborts rethrow the signal's reason, lost connections are classified. */
  body: AsyncIterable<Uint8Array>;
  /** Reads and parses the whole body (garbage → BackendResponseError). */
  json(): Promise<unknown>;
  /** Discards the body (keeps the connection reusable). */
  dump(): Promise<void>;
  /** Stops reading: the connection is closed, not reused (an upstream that will not end its body). */
  cancel(): void;
}

/**
 * A Pool that can tell when a request was written: undici calls `onRequestSent` on the request's
 * handler, which `pool.request()` does not expose, so the option is put on the handler here.
 */
class SentAwarePool extends Pool {
  override dispatch(
    options: Dispatcher.DispatchOptions & { onRequestSent?: () => void },
    handler: Dispatcher.DispatchHandler,
  ): boolean {
    if (options.onRequestSent) (handler as { onRequestSent?: () => void }).onRequestSent = options.onRequestSent;
    return super.dispatch(options, handler);
  }
}

/** One upstream base URL: a keep-alive connection pool plus classified requests. */
export class UpstreamHttp {
  /** `host:port`, safe for metrics and logs (no scheme, credentials or path). */
  readonly label: string;
  private readonly pool: SentAwarePool;
  private readonly pathPrefix: string;
  private readonly apiKey: string | null;
  /** Strings that must never appear in an error message. */
  private readonly secrets: string[];

  constructor(baseUrl: string, options: UpstreamHttpOptions = {}) {
    const url = new URL(baseUrl);
    const defaultPort = url.protocol === 'https:' ? '443' : '80';
    this.label = `${url.hostname}:${url.port || defaultPort}`;
    this.pathPrefix = url.pathname.replace(/\/+$/, '');
    this.apiKey = options.apiKey ?? null;
    // Longest first, so a URL is redacted whole before its host is.
    this.secrets = [baseUrl, url.origin, url.host, url.hostname, url.password, this.apiKey ?? '']
      .filter((s) => s.length >= 4)
      .sort((a, b) => b.length - a.length);
    this.pool = new SentAwarePool(url.origin, {
      headersTimeout: 0,
      bodyTimeout: 0,
      ...options.pool,
    });
  }

  /**
   * Sends one request. Resolves with a 2xx response; rejects with BackendUnreachableError,
   * BackendResponseError (non-2xx, body already consumed) or the signal's reason.
   */
  async request(req: UpstreamRequest): Promise<UpstreamResponse> {
    const { signal } = req;
    signal.throwIfAborted();
    const headers: Record<string, string> = { accept: 'application/json, text/event-stream' };
    if (req.json !== undefined) headers['content-type'] = 'application/json';
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    injectTraceContext(headers); // W3C traceparent of the active span (tracing on)

    let res: Dispatcher.ResponseData;
    try {
      res = await this.pool.request({
        method: req.method,
        path: this.pathPrefix + req.path,
        headers,
        body: req.json === undefined ? undefined : JSON.stringify(req.json),
        signal,
        ...(req.onSent ? { onRequestSent: req.onSent } : {}),
      } as Dispatcher.RequestOptions);
    } catch (err) {
      signal.throwIfAborted();
      throw this.classifyRequestError(err);
    }

    const body = guardBody(res.body, signal);
    if (res.statusCode < 200 || res.statusCode > 299) {
      throw await this.statusError(res.statusCode, body, signal);
    }
    return {
      status: res.statusCode,
      body,
      json: async () => parseJson(await readText(body, MAX_JSON_BODY_BYTES)),
      dump: async () => {
        for await (const chunk of body) void chunk;
      },
      cancel: () => res.body.destroy(),
    };
  }

  /** Same sanitizing rules as error responses, for error events inside a 200 stream. */
  upstreamError(body: unknown, status: number | null = null): BackendResponseError {
    const excerpt = this.excerpt(upstreamErrorMessage(body));
    const head = status === null ? 'upstream reported an error' : `upstream returned HTTP ${status}`;
    return new BackendResponseError(excerpt ? `${head}: ${excerpt}` : head, status);
  }

  /**
   * Closes the pool, letting in-flight requests finish for a short grace period before the
   * remaining sockets are destroyed (the generation service drains requests first).
   */
  async close(graceMs = 1000): Promise<void> {
    if (this.pool.destroyed) return;
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), graceMs);
      timer.unref();
    });
    const outcome = await Promise.race([this.pool.close().then(() => 'closed' as const), grace]);
    clearTimeout(timer);
    if (outcome === 'timeout') await this.pool.destroy();
  }

  private classifyRequestError(err: unknown): Error {
    if (err instanceof BackendResponseError || err instanceof BackendUnreachableError) return err;
    const code = errorCode(err);
    if (code && UNREACHABLE_CODES.has(code)) {
      return new BackendUnreachableError(`upstream unreachable (${code})`, { cause: err });
    }
    return new BackendResponseError('upstream request failed', null, { cause: err });
  }

  private async statusError(
    status: number,
    body: AsyncIterable<Uint8Array>,
    signal: AbortSignal,
  ): Promise<BackendResponseError> {
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(await readText(body, MAX_ERROR_BODY_BYTES)) as unknown;
    } catch {
      // Not JSON, or the connection died: report the status alone. An abort stays an abort.
      signal.throwIfAborted();
    }
    return this.upstreamError(parsed, status);
  }

  private excerpt(message: string | null): string {
    if (!message) return '';
    let text = message;
    for (const secret of this.secrets) text = text.split(secret).join('[redacted]');
    text = text
      .replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+/gi, '[url]')
      .replace(/\bBearer\s+\S+/gi, 'Bearer [redacted]')
      .replace(/\bsk-[A-Za-z0-9_*-]{6,}/g, '[redacted]');
    return cleanExcerpt(text);
  }
}

/**
 * Reads a body into a string, at most `limit` bytes: beyond it the rest is discarded (leaving
 * the loop early destroys the underlying stream, so that connection is not reused).
 */
async function readText(body: AsyncIterable<Uint8Array>, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    chunks.push(buf);
    size += buf.length;
    if (size >= limit) break;
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}
