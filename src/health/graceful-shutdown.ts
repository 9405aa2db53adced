/**
 * Graceful shutdown of a listening app (SIGTERM/SIGINT in main.ts, or a test):
 * 1. ShutdownState flips: /readyz answers 503 at once;
 * 2. the listener closes (new connections are refused) and idle keep-alive connections close;
 *    a request still arriving on an open connection is served with `Connection: close`;
 * 3. in-flight requests and SSE streams run to their end, for up to SHUTDOWN_GRACE_MS; then
 *    the remaining connections are destroyed (which aborts their upstream calls);
 * 4. app.close(): the shutdown hooks close upstream pools, engines, Redis and the database.
 * Calling it again returns the same promise.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { INestApplication } from '@nestjs/common';
import type { AppLogger } from '../logging/logger';
import { ShutdownState } from './shutdown-state';

export interface ShutdownReport {
  /** Requests cut off when the grace period ended. */
  cutOff: number;
}

export type GracefulShutdown = (reason: string) => Promise<ShutdownReport>;

export function installGracefulShutdown(
  app: INestApplication,
  options: { graceMs: number; logger: AppLogger },
): GracefulShutdown {
  const server = app.getHttpServer() as Server;
  const state = app.get(ShutdownState);
  const inFlight = new Set<ServerResponse>();
  let drained: (() => void) | null = null;

  const onResponseClosed = (res: ServerResponse): void => {
    inFlight.delete(res);
    if (!state.shuttingDown) return;
    // The socket is handed back as idle only after this event: close it on the next turn.
    setImmediate(() => server.closeIdleConnections());
    if (inFlight.size === 0) drained?.();
  };
  // First listener, so it runs before Express handles (and possibly answers) the request.
  server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
    inFlight.add(res);
    if (state.shuttingDown) res.shouldKeepAlive = false;
    res.once('close', () => onResponseClosed(res));
  });

  let running: Promise<ShutdownReport> | null = null;
  return (reason) => {
    running ??= (async () => {
      state.begin();
      options.logger.info(
        { reason, in_flight: inFlight.size, grace_ms: options.graceMs },
        'shutting down: draining requests',
      );
      const listenerClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      for (const res of inFlight) if (!res.headersSent) res.shouldKeepAlive = false;

      let cutOff = 0;
      if (inFlight.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => (drained = resolve)),
          new Promise<void>((resolve) => (timer = setTimeout(resolve, options.graceMs))),
        ]);
        clearTimeout(timer);
        cutOff = inFlight.size;
      }
      if (cutOff > 0)
        options.logger.warn({ cut_off: cutOff }, 'shutdown grace period over: closing the remaining connections');
      server.closeAllConnections();
      await listenerClosed;
      await app.close();
      options.logger.info('shutdown complete');
      return { cutOff };
    })();
    return running;
  };
}
