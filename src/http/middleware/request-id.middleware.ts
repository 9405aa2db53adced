/**
 * Gives every request an id: the client's X-Request-Id when it is 1..128 characters of
 * [A-Za-z0-9._:-], else a generated one. Echoed on every response, errors included. Stamps the
 * arrival time, and puts X-Gateway-Overhead-Ms on the response as its headers go out.
 */
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { gatewayOverheadMs } from '../../contracts/gateway-overhead';
import type { AppRequest } from '../../contracts/request-context';

const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdMiddleware(req: Request, res: Response, next: NextFunction): void {
  const offered = req.headers['x-request-id'];
  const requestId = typeof offered === 'string' && VALID_REQUEST_ID.test(offered) ? offered : `req-${randomUUID()}`;
  const ctx = { requestId, startedAt: process.hrtime.bigint() };
  (req as AppRequest).ctx = ctx;
  res.setHeader('X-Request-Id', requestId);
  const writeHead = res.writeHead;
  res.writeHead = function (this: Response, ...args: Parameters<Response['writeHead']>) {
    if (!this.headersSent) this.setHeader('X-Gateway-Overhead-Ms', gatewayOverheadMs(ctx).toFixed(3));
    return writeHead.apply(this, args);
  } as Response['writeHead'];
  next();
}
