/**
 * JSON-only request bodies: a body with any other media type is 415, malformed JSON 400 and a
 * body over BODY_LIMIT 413. Express errors travel to Nest's error handler and from there to
 * the global filter, so they get the same envelope as every other error.
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { AppError } from './app-error';

const JSON_TYPES = ['application/json', 'application/*+json'];

function hasBody(req: Request): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

export function jsonBodyMiddleware(limitBytes: number): RequestHandler[] {
  const requireJson = (req: Request, _res: Response, next: NextFunction): void => {
    if (hasBody(req) && !req.is(JSON_TYPES)) {
      next(new AppError('unsupported_media_type', 'request bodies must be JSON (Content-Type: application/json)'));
      return;
    }
    next();
  };
  return [requireJson, express.json({ limit: limitBytes, type: JSON_TYPES, strict: false })];
}
