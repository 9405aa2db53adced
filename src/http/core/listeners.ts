/**
 * Which listener a request arrived on, and the client address each one trusts. With ADMIN_PORT
 * the admin listener serves the same Express app as the public one, so Express' `trust proxy`
 * (TRUST_PROXY_HOPS) would apply to both: the admin port must never read X-Forwarded-For (API.md
 * "Authentication"), since anyone who reaches it could then pick the address its failed
 * attempts are counted against, or lock out the real local admin.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Request } from 'express';

const ADMIN_SOCKET = Symbol('llm-server:admin-socket');

/** Marks every connection `server` accepts as arriving on the admin listener. */
export function markAdminListener(server: Server): void {
  server.on('connection', (socket: Socket) => {
    (socket as Socket & { [ADMIN_SOCKET]?: true })[ADMIN_SOCKET] = true;
  });
}

export function onAdminListener(req: Request): boolean {
  return (req.socket as Socket & { [ADMIN_SOCKET]?: true })[ADMIN_SOCKET] === true;
}

/**
 * The client's address: on the public listener as Express trusts it (the peer, or with
 * TRUST_PROXY_HOPS the X-Forwarded-For entry that many hops from the right); on the admin
 * listener always the peer.
 */
export function clientAddress(req: Request): string | undefined {
  return onAdminListener(req) ? req.socket.remoteAddress : req.ip;
}
