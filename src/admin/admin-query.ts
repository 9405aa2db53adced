/** Query-string parameters of the admin API: all strings on the wire, parsed strictly here. */
import { invalidRequest } from '../common/app-error';
import { isInDateRange } from './dto/key-fields.dto';

const DEFAULT_PAGE = 20;
const MAX_PAGE = 100;

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
