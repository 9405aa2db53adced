/**
 * The admin API as the console calls it: same origin, `Authorization: Bearer <token>` from the
 * session, JSON in and out, and the API's error envelope turned into an ApiError carrying its
 * code, message and request id so the page can show exactly what the server said.
 */
import { storedToken } from './session';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | null,
    readonly param: string | null,
  ) {
    super(message);
  }
}

/** Fired when the server refuses the stored token, so the app can return to the sign-in page. */
export const UNAUTHORIZED_EVENT = 'llm-console:unauthorized';

interface ErrorEnvelope {
  error?: { code?: string; message?: string; param?: string | null; request_id?: string };
}

async function call<T>(token: string, method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
    });
  } catch {
    throw new ApiError(0, 'network_error', 'the server could not be reached', null, null);
  }
  if (res.status === 204) return undefined as T;
  let json: unknown = null;
  try {
    json = await res.json();
  } catch {
    json = null;
  }
  if (!res.ok) {
    const error = (json as ErrorEnvelope | null)?.error;
    throw new ApiError(
      res.status,
      error?.code ?? `http_${res.status}`,
      error?.message ?? (res.statusText || 'request failed'),
      error?.request_id ?? res.headers.get('X-Request-Id'),
      error?.param ?? null,
    );
  }
  return json as T;
}

/** A call with the signed-in token; a refused token signs the console out. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const token = storedToken();
  if (!token) throw new ApiError(401, 'signed_out', 'you are signed out', null, null);
  try {
    return await call<T>(token, method, path, body);
  } catch (error) {
    if (error instanceof ApiError && (error.code === 'invalid_admin_token' || error.code === 'missing_admin_token')) {
      window.dispatchEvent(new CustomEvent(UNAUTHORIZED_EVENT, { detail: error }));
    }
    throw error;
  }
}

/** Checks a token before it is stored: any admin call the token can make. */
export function verifyToken(token: string): Promise<unknown> {
  return call(token, 'GET', '/admin/keys?limit=1');
}

export function query(params: Record<string, string | number | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== '') search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}
