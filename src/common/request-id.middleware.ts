/**
 * Gives every request an id: the client's X-Request-Id when it is 1..128 characters of
 * [A-Za-z0-9._:-], else a generated one. Echoed on every response, errors included.
 */
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { AppRequest } from './request-context';

const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdMiddleware(req: Request, res: Response, next: NextFunction): void {
  const offered = req.headers['x-request-id'];
  const requestId = typeof offered === 'string' && VALID_REQUEST_ID.test(offered) ? offered : `req-${randomUUID()}`;
  (req as AppRequest).ctx = { requestId, startedAt: process.hrtime.bigint() };
  res.setHeader('X-Request-Id', requestId);
  next();
}
