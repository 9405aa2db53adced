/** Query-string parameters of the admin API: all strings on the wire, parsed strictly here. */
import { invalidRequest } from '../../contracts/app-error';
import { isInDateRange } from './dto/key-fields.dto';
import { UUID } from './team-errors';

const DEFAULT_PAGE = 20;
const MAX_PAGE = 100;
const MAX_SEARCH_CHARS = 200;
const DAY_MS = 86_400_000;
/** The window of a usage query that names no `from`. */
const DEFAULT_USAGE_DAYS = 30;
/** A lone UTF-16 surrogate: not text PostgreSQL can compare. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function parseLimit(value: unknown): number {
  if (value === undefined) return DEFAULT_PAGE;
  if (typeof value !== 'string' || !/^\d+$/.test(value)) throw invalidRequest('limit must be an integer', 'limit');
  const limit = Number(value);
  if (limit < 1 || limit > MAX_PAGE) throw invalidRequest(`limit must be between 1 and ${MAX_PAGE}`, 'limit');
  return limit;
}

export function encodeCursor(createdAt: Date, id: string): string {
  return Buffer.from(JSON.stringify([createdAt.toISOString(), id])).toString('base64url');
}

export function decodeCursor(value: unknown): { createdAt: Date; id: string } | null {
  if (value === undefined) return null;
  try {
    if (typeof value !== 'string') throw new Error('not a string');
    const [createdAt, id] = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as unknown[];
    const date = new Date(String(createdAt));
    if (typeof id !== 'string' || !/^[0-9a-f-]{36}$/i.test(id) || Number.isNaN(date.getTime())) {
      throw new Error('bad cursor');
    }
    return { createdAt: date, id };
  } catch {
    throw invalidRequest('cursor is not valid; pass next_cursor from the previous page', 'cursor');
  }
}

export function parseDay(value: unknown, param: string): string | null {
  if (value === undefined) return null;
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(value)) {
    throw invalidRequest(`${param} must be a date as YYYY-MM-DD`, param);
  }
  const date = new Date(`${value}T00:00:00Z`);
  if (Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== value) {
    throw invalidRequest(`${param} is not a calendar date`, param);
  }
  if (!isInDateRange(date)) throw invalidRequest(`${param} must be a date between the years 0001 and 9999`, param);
  return value;
}

/** `q` of GET /admin/keys: null when absent or empty (no filter). */
/** `team_id` of the key list: a team's id (only its keys), or none. */
export function parseTeamFilter(value: unknown): string | null {
  if (value === undefined || value === '') return null;
  if (typeof value !== 'string' || !UUID.test(value)) throw invalidRequest('team_id must be a team id', 'team_id');
  return value;
}

export function parseSearch(value: unknown): string | null {
  if (value === undefined || value === '') return null;
  if (typeof value !== 'string') throw invalidRequest('q must be a single string', 'q');
  if (value.length > MAX_SEARCH_CHARS) throw invalidRequest(`q must be at most ${MAX_SEARCH_CHARS} characters`, 'q');
  if (value.includes('\u0000') || LONE_SURROGATE.test(value)) throw invalidRequest('q must be plain text', 'q');
  return value;
}

/**
 * The `from`/`to` days of a usage query (inclusive, YYYY-MM-DD): `to` defaults to today (UTC, by
 * the server's clock), `from` to 29 days before `to` (30 days in all).
 */
export function parseDayRange(fromParam: unknown, toParam: unknown, today: Date): { from: string; to: string } {
  const to = parseDay(toParam, 'to') ?? today.toISOString().slice(0, 10);
  const defaultFrom = new Date(Date.parse(`${to}T00:00:00Z`) - (DEFAULT_USAGE_DAYS - 1) * DAY_MS);
  const from = parseDay(fromParam, 'from') ?? defaultFrom.toISOString().slice(0, 10);
  if (from > to) throw invalidRequest('from must not be after to', 'from');
  return { from, to };
}
