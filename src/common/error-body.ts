/** The error envelope of API.md, OpenAI-compatible so SDKs parse it. */
import { ERROR_CODES, type ErrorCode } from './app-error';

export interface ErrorBody {
  error: {
    code: ErrorCode;
    message: string;
    type: string;
    param: string | null;
    request_id: string;
  };
}

export function errorBody(code: ErrorCode, message: string, requestId: string, param: string | null = null): ErrorBody {
  return { error: { code, message, type: ERROR_CODES[code].type, param, request_id: requestId } };
}
