/**
 * helmet's security headers, computed once at startup and set by one plain loop per request.
 * helmet itself runs a dozen nested middlewares per request (each a closure call and a
 * setHeader); the headers never depend on the request, so we record what helmet sets and replay
 * it. helmet stays the source of truth for which headers and values.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import helmet from 'helmet';

type HelmetOptions = Parameters<typeof helmet>[0];

export function securityHeadersMiddleware(options: HelmetOptions): RequestHandler {
  const set: Array<[string, string]> = [];
  const removed: string[] = [];
  const recorder = {
    setHeader: (name: string, value: string) => set.push([name, value]),
    removeHeader: (name: string) => removed.push(name),
  };
  let recorded = false;
  helmet(options)({} as Request, recorder as unknown as Response, () => {
    recorded = true;
  });
  // helmet is synchronous today; if a future version is not, fail at startup, not per request.
  if (!recorded) throw new Error('helmet did not finish synchronously');
  return (_req: Request, res: Response, next: NextFunction): void => {
    for (let i = 0; i < set.length; i += 1) res.setHeader(set[i][0], set[i][1]);
    for (let i = 0; i < removed.length; i += 1) res.removeHeader(removed[i]);
    next();
  };
}
