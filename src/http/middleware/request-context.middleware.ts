/**
 * Attaches the request's context (contracts/request-context.ts) and its id: the client's
 * X-Request-Id when it is 1..128 characters of [A-Za-z0-9._:-], else a generated one, echoed on
 * every response, errors included. As the response's head goes out it carries what the
 * context learned meanwhile: X-Gateway-Overhead-Ms and the limit headers (limit-headers.ts),
 * so every response has them whichever code answered it.
 */
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { gatewayOverheadMs } from '../../contracts/gateway-overhead';
import type { RequestContext } from '../../contracts/request-context';
import type { AppRequest } from '../core/app-request';
import { setLimitHeaders } from '../core/limit-headers';

const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestContextMiddleware(req: Request, res: Response, next: NextFunction): void {
  const offered = req.headers['x-request-id'];
  const requestId = typeof offered === 'string' && VALID_REQUEST_ID.test(offered) ? offered : `req-${randomUUID()}`;
  const ctx: RequestContext = { requestId, startedAt: process.hrtime.bigint(), limits: {} };
  (req as AppRequest).ctx = ctx;
  res.setHeader('X-Request-Id', requestId);
  const writeHead = res.writeHead;
  res.writeHead = function (this: Response, ...args: Parameters<Response['writeHead']>) {
    if (!this.headersSent) {
      this.setHeader('X-Gateway-Overhead-Ms', gatewayOverheadMs(ctx).toFixed(3));
      setLimitHeaders(this, ctx.limits);
    }
    return writeHead.apply(this, args);
  } as Response['writeHead'];
  next();
}
