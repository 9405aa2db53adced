/**
 * Reading what an upstream sends, shared by the remote providers: JSON values checked for the
 * shapes we rely on, line-oriented parsers (`readLines`, `sseData`, `ndjsonValues`) that survive
 * chunks splitting lines and multi-byte UTF-8 characters, the output bounds of one stream, and
 * client-safe excerpts of an upstream's own error messages. Anything unreadable is a
 * BackendResponseError whose message is safe to show a client.
 */
import { StringDecoder } from 'node:string_decoder';
import { BackendResponseError } from '../../contracts/backend-errors';

/** Longest upstream error excerpt put into a message. */
const MAX_EXCERPT_CHARS = 200;
/** Longest line the SSE/NDJSON parsers accept before calling the stream garbage. */
const MAX_LINE_CHARS = 8 * 1024 * 1024;

export const UNPARSEABLE_MESSAGE = 'upstream sent an unparseable response';
export const ENDED_EARLY_MESSAGE = 'upstream stream ended early';
export type JsonRecord = Record<string, unknown>;

export function isRecord(value: unknown): value is JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses JSON or throws BackendResponseError("upstream sent an unparseable response"). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new BackendResponseError(UNPARSEABLE_MESSAGE, null, { cause: err });
  }
}

export function unparseable(): BackendResponseError {
  return new BackendResponseError(UNPARSEABLE_MESSAGE);
}

/** A non-negative integer token count, or a BackendResponseError. */
export function tokenCount(value: unknown): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return value;
  throw unparseable();
}

/** An embedding vector: a non-empty array of finite numbers, or a BackendResponseError. */
export function embeddingVector(value: unknown): number[] {
  if (!Array.isArray(value) || value.length === 0) throw unparseable();
  for (const x of value as unknown[]) if (typeof x !== 'number' || !Number.isFinite(x)) throw unparseable();
  return value as number[];
}

/**
 * The upstream's own error message from a JSON error body, if it has one. Understands
 * `{"error": "..."}` (Ollama, TGI), `{"error": {"message": "..."}}` (OpenAI, newer vLLM),
 * `{"object": "error", "message": "..."}` (older vLLM) and `{"detail": "..."}` (FastAPI).
 */
export function upstreamErrorMessage(body: unknown): string | null {
  if (typeof body === 'string') return body;
  if (!isRecord(body)) return null;
  const { error } = body;
  if (typeof error === 'string') return error;
  if (isRecord(error) && typeof error.message === 'string') return error.message;
  if (typeof body.message === 'string') return body.message;
  if (typeof body.detail === 'string') return body.detail;
  return null;
}

/**
 * Splits a byte stream into text lines (without the `\n` or `\r\n` terminator). UTF-8
 * sequences split across chunks are decoded correctly; a final line without a terminator is
 * yielded too.
 */
export async function* readLines(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  const drain = function* (): Generator<string> {
    let newline = pending.indexOf('\n');
    while (newline !== -1) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      yield line.endsWith('\r') ? line.slice(0, -1) : line;
      newline = pending.indexOf('\n');
    }
    if (pending.length > MAX_LINE_CHARS) throw unparseable();
  };
  for await (const chunk of body) {
    pending += decoder.write(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
    yield* drain();
  }
  pending += decoder.end();
  yield* drain();
  if (pending.length > 0) yield pending.endsWith('\r') ? pending.slice(0, -1) : pending;
}

/**
 * Server-sent events: yields the `data` of each event (several `data:` lines joined by `\n`).
 * Comments and other fields (`event:`, `id:`, `retry:`) are ignored. As the SSE spec says, an
 * event not terminated by a blank line before the stream ends is not dispatched.
 */
export async function* sseData(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  let data: string[] = [];
  for await (const line of readLines(body)) {
    if (line === '') {
      if (data.length > 0) yield data.join('\n');
      data = [];
    } else if (line.startsWith('data:')) {
      const value = line.slice(5);
      data.push(value.startsWith(' ') ? value.slice(1) : value);
    }
  }
}

/** Newline-delimited JSON: yields each non-blank line parsed; invalid JSON is garbage. */
export async function* ndjsonValues(body: AsyncIterable<Uint8Array>): AsyncGenerator<unknown> {
  for await (const line of readLines(body)) {
    if (line.trim() !== '') yield parseJson(line);
  }
}

/**
 * What a stream may send for one request: a delta per token of `max_new_tokens` plus some slack
 * (engines occasionally split a token), and a byte budget far above any honest stream. An
 * upstream beyond either is broken or hostile and is cut with backend_error.
 */
export function streamLimits(maxNewTokens: number): { maxDeltas: number; maxBytes: number } {
  return {
    maxDeltas: maxNewTokens + Math.max(8, Math.ceil(maxNewTokens / 10)),
    maxBytes: 64 * 1024 + maxNewTokens * 4096,
  };
}

export const TOO_MUCH_OUTPUT_MESSAGE = 'upstream sent more output than the request allows';

/** Passes a body through, failing it once more than `maxBytes` arrived. */
export async function* capBytes(body: AsyncIterable<Uint8Array>, maxBytes: number): AsyncGenerator<Uint8Array> {
  let bytes = 0;
  for await (const chunk of body) {
    bytes += chunk.length;
    if (bytes > maxBytes) throw new BackendResponseError(TOO_MUCH_OUTPUT_MESSAGE);
    yield chunk;
  }
}

/** Removes control characters, collapses whitespace and bounds the length. */
export function cleanExcerpt(text: string, maxChars = MAX_EXCERPT_CHARS): string {
  const clean = text
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  const chars = Array.from(clean);
  return chars.length > maxChars ? `${chars.slice(0, maxChars).join('')}…` : clean;
}
