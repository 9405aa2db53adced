/**
 * Graceful shutdown of a listening app (SIGTERM/SIGINT in main.ts, or a test):
 * 1. ShutdownState flips: /readyz answers 503 at once;
 * 2. the listener closes (new connections are refused) and idle keep-alive connections close;
 *    a request still arriving on an open connection is served with `Connection: close`;
 * 3. in-flight requests and SSE streams run to their end, for up to SHUTDOWN_GRACE_MS; then
 *    the remaining connections are destroyed (which aborts their upstream calls);
 * 4. the work those requests still do after their connection is gone (their billing) is
 *    awaited, bounded, so their usage reaches the ledger;
 * 5. app.close(): the shutdown hooks write the ledger and quota charges, then close upstream
 *    pools, engines, Redis and the database.
 * Every listener (the public one, and the admin one when ADMIN_PORT is set) drains alike.
 * Calling it again returns the same promise.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { INestApplication } from '@nestjs/common';
import { InFlightWork } from '../../infra/lifecycle/in-flight-work';
import type { AppLogger } from '../../infra/logging/logger';
import { ShutdownState } from '../../infra/lifecycle/shutdown-state';

/** How long the billing of requests cut at the end of the grace may take before closing anyway. */
const CUT_WORK_BOUND_MS = 5000;

export interface ShutdownReport {
  /** Requests cut off when the grace period ended. */
  cutOff: number;
}

export type GracefulShutdown = (reason: string) => Promise<ShutdownReport>;

export function installGracefulShutdown(
  app: INestApplication,
  servers: Server[],
  options: { graceMs: number; logger: AppLogger },
): GracefulShutdown {
  const state = app.get(ShutdownState);
  const work = app.get(InFlightWork);
  const inFlight = new Set<ServerResponse>();
  let drained: (() => void) | null = null;

  const onResponseClosed = (res: ServerResponse): void => {
    inFlight.delete(res);
    if (!state.shuttingDown) return;
    // The socket is handed back as idle only after this event: close it on the next turn.
    setImmediate(() => servers.forEach((server) => server.closeIdleConnections()));
    if (inFlight.size === 0) drained?.();
  };
  // First listener, so it runs before Express handles (and possibly answers) the request.
  const track = (_req: IncomingMessage, res: ServerResponse) => {
    inFlight.add(res);
    if (state.shuttingDown) res.shouldKeepAlive = false;
    res.once('close', () => onResponseClosed(res));
  };
  for (const server of servers) server.prependListener('request', track);

  let running: Promise<ShutdownReport> | null = null;
  return (reason) => {
    running ??= (async () => {
      state.begin();
      options.logger.info(
        { reason, in_flight: inFlight.size, grace_ms: options.graceMs },
        'shutting down: draining requests',
      );
      const listenersClosed = Promise.all(
        servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
      );
      for (const server of servers) server.closeIdleConnections();
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
      for (const server of servers) server.closeAllConnections();
      await listenersClosed;
      if (!(await work.settled(CUT_WORK_BOUND_MS))) {
        options.logger.warn({ pending: work.size }, 'shutdown: request work still running; closing anyway');
      }
      await app.close();
      options.logger.info('shutdown complete');
      return { cutOff };
    })();
    return running;
  };
}
