/**
 * What a database failure means to the request path. PostgreSQL reports problems with a
 * five-character SQLSTATE; a failure without one never reached the server (refused, reset,
 * timed out) and means the database is unavailable, like the connection-class SQLSTATEs.
 * Data and constraint errors (classes 22 and 23) come from values a client sent: they are bad
 * input (400), never a 500.
 */
import type { FailureKind } from '../lifecycle/dependency-health';

function sqlState(error: unknown): string | null {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : null;
}

/** SQLSTATEs that mean "the server cannot serve us now", not "this statement is wrong". */
const OUTAGE_STATES = new Set(['57P01', '57P02', '57P03', '53300', '53200']);
/** query_canceled: the statement ran into statement_timeout (or was cancelled). */
const STATEMENT_TIMEOUT = '57014';
/** Messages of node-postgres and pg-pool for a statement or a pool wait past its bound. */
const CLIENT_TIMEOUTS = ['Query read timeout', 'timeout exceeded when trying to connect'];

/**
 * What a failed statement says about the database (dependency-health.ts): a timeout is that
 * statement's failure (a row lock on a hot key, a slow plan), counted; an outage (refused, reset,
 * a connection-class SQLSTATE) makes the database count as down; any other error is its answer.
 */
export function classifyDatabaseFailure(error: unknown): FailureKind {
  // Programming errors are bugs to surface, not a reason to stop using the database.
  if (error instanceof TypeError || error instanceof RangeError) return 'answer';
  const state = sqlState(error);
  if (state === STATEMENT_TIMEOUT) return 'timeout';
  if (state === null) return CLIENT_TIMEOUTS.includes((error as Error)?.message) ? 'timeout' : 'outage';
  return (state.startsWith('08') && state !== '08P01') || OUTAGE_STATES.has(state) ? 'outage' : 'answer';
}

/** Class 22 (data exception: invalid text, NUL byte, out of range) and 23 (constraint violation). */
export function isBadInput(error: unknown): boolean {
  const state = sqlState(error);
  return state !== null && (state.startsWith('22') || state.startsWith('23'));
}

/** The database refused a statement because of a value in it (no SQL or value in the message). */
export class DatabaseRejected extends Error {
  override readonly name = 'DatabaseRejected';
  constructor(options?: { cause?: unknown }) {
    super('a value in the request cannot be stored', options);
  }
}
