/**
 * Limits on what a JSON body may contain, checked before anything interprets it, so no input
 * can drive a later stage (class-transformer's recursion, PostgreSQL's text type) into a 500:
 * - nesting deeper than MAX_JSON_DEPTH, found by a scan of the raw bytes before parsing (a deep
 *   body costs a linear scan, never a deep parse);
 * - NUL characters and lone UTF-16 surrogates in any string or field name (PostgreSQL text
 *   cannot hold NUL; a lone surrogate cannot be encoded as UTF-8).
 */
import { invalidRequest, type AppError } from '../../contracts/app-error';

export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPENERS = new Set([0x5b, 0x7b]); // [ {
const CLOSERS = new Set([0x5d, 0x7d]); // ] }

/** Whether the JSON text nests arrays/objects deeper than `maxDepth` (strings are skipped). */
export function nestsDeeperThan(raw: Uint8Array, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < raw.length; i += 1) {
    const byte = raw[i];
    if (inString) {
      if (byte === BACKSLASH) i += 1;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) {
      inString = true;
    } else if (OPENERS.has(byte)) {
      if (++depth > maxDepth) return true;
    } else if (CLOSERS.has(byte)) {
      depth -= 1;
    }
  }
  return false;
}

// eslint-disable-next-line no-control-regex
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

type PathPart = string | number;

function pathText(path: PathPart[]): string | null {
  let text = '';
  for (const part of path) text += typeof part === 'number' ? `[${part}]` : text === '' ? part : `.${part}`;
  return text === '' ? null : text;
}

/** The first string (or field name) holding a NUL or a lone surrogate, as a 400 naming it; else null. */
export function findUnstorableString(value: unknown, path: PathPart[] = []): AppError | null {
  if (typeof value === 'string') {
    return UNSTORABLE.test(value)
      ? invalidRequest('strings must not contain NUL characters or unpaired surrogates', pathText(path))
      : null;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i += 1) {
      const found = findUnstorableString(value[i], [...path, i]);
      if (found) return found;
    }
    return null;
  }
  if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (UNSTORABLE.test(key)) {
        return invalidRequest('field names must not contain NUL characters or unpaired surrogates', pathText(path));
      }
      const found = findUnstorableString(item, [...path, key]);
      if (found) return found;
    }
  }
  return null;
}
