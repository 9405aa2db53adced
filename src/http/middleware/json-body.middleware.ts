/**
 * JSON-only request bodies: a body with any other media type is 415, malformed JSON 400, a
 * body over BODY_LIMIT 413, and a body over the limits of json-limits.ts (nesting depth, NUL
 * and lone surrogates) 400. The error is not raised here: it is kept on the request and raised
 * by BodyErrorInterceptor after the guards, because API.md orders authentication (401) and
 * rate limiting (429) before request validation.
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { AppError, type ErrorCode } from '../../contracts/app-error';
import { findUnstorableString, MAX_JSON_DEPTH, nestsDeeperThan } from './json-limits';
import type { AppRequest } from '../core/app-request';

const JSON_TYPES = ['application/json', 'application/*+json'];

/** body-parser failure types and what they mean to a client. */
const BODY_PARSER_ERRORS: Record<string, { code: ErrorCode; message: string }> = {
  'entity.parse.failed': { code: 'invalid_request', message: 'malformed JSON body' },
  'entity.too.large': { code: 'payload_too_large', message: 'request body is larger than the configured limit' },
  'charset.unsupported': { code: 'unsupported_media_type', message: 'request bodies must be UTF-8 JSON' },
  'encoding.unsupported': { code: 'unsupported_media_type', message: 'unsupported Content-Encoding' },
  'entity.verify.failed': {
    code: 'invalid_request',
    message: `JSON nesting deeper than ${MAX_JSON_DEPTH} levels is not accepted`,
  },
};

function hasBody(req: Request): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

function toBodyError(error: unknown): AppError {
  const known = BODY_PARSER_ERRORS[(error as { type?: string }).type ?? ''];
  return known
    ? new AppError(known.code, known.message)
    : new AppError('invalid_request', 'request body could not be read');
}

export function jsonBodyMiddleware(limitBytes: number): RequestHandler {
  const parseJson = express.json({
    limit: limitBytes,
    type: JSON_TYPES,
    strict: false,
    verify: (_req, _res, raw) => {
      if (nestsDeeperThan(raw, MAX_JSON_DEPTH)) throw new Error('nesting too deep');
    },
  });
  return (req: Request, res: Response, next: NextFunction): void => {
    const ctx = (req as AppRequest).ctx;
    if (hasBody(req) && !req.is(JSON_TYPES)) {
      ctx.bodyError = new AppError(
        'unsupported_media_type',
        'request bodies must be JSON (Content-Type: application/json)',
      );
      req.resume(); // discard the unread body
      next();
      return;
    }
    parseJson(req, res, (error?: unknown) => {
      if (error) {
        ctx.bodyError = toBodyError(error);
        req.body = undefined;
      } else if (req.body !== undefined) {
        const unstorable = findUnstorableString(req.body);
        if (unstorable) {
          ctx.bodyError = unstorable;
          req.body = undefined;
        }
      }
      next();
    });
  };
}
