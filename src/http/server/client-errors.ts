/**
 * Requests Node's HTTP parser refuses before the app sees them (a request line or headers over
 * the size limit, malformed HTTP): Node would answer them with a bare status and no body. They
 * get the error envelope of API.md like every other error: 400 invalid_request. A socket that
 * cannot be written any more is just closed.
 */
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { errorBody } from '../core/error-body';

const MESSAGES: Record<string, string> = {
  HPE_HEADER_OVERFLOW: 'the request line or headers are larger than the server accepts',
};

export function answerClientErrors(server: Server): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable || (error.code === 'ECONNRESET' && socket.destroyed)) {
      socket.destroy();
      return;
    }
    const message = MESSAGES[error.code ?? ''] ?? 'malformed HTTP request';
    const body = JSON.stringify(errorBody('invalid_request', message, 'unknown'));
    socket.end(
      'HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}
