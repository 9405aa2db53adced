/** The error envelope of API.md, OpenAI-compatible so SDKs parse it. */
import type { ErrorCode } from '../../contracts/app-error';
import { ERROR_STATUS } from './error-status';

export interface ErrorBody {
  error: {
    code: ErrorCode;
    message: string;
    type: string;
    param: string | null;
    request_id: string;
  };
}

/** `param` and messages can name request fields, which a client can make arbitrarily long: bounded. */
const MAX_PARAM_CHARS = 256;
const MAX_MESSAGE_CHARS = 1024;

function bounded(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

export function errorBody(code: ErrorCode, message: string, requestId: string, param: string | null = null): ErrorBody {
  return {
    error: {
      code,
      message: bounded(message, MAX_MESSAGE_CHARS),
      type: ERROR_STATUS[code].type,
      param: param === null ? null : bounded(param, MAX_PARAM_CHARS),
      request_id: requestId,
    },
  };
}
