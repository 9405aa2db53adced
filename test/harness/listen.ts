/** Raw HTTP against an in-process app, for tests that must cut a connection mid-request. */
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestApp } from './app';

export async function listenOnLoopback(app: TestApp): Promise<string> {
  const server = app.app!.getHttpServer();
  if (!server.listening) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Sends a JSON POST and destroys the connection after `afterMs` (before or during the answer). */
export function postThenDisconnect(
  baseUrl: string,
  path: string,
  headers: Record<string, string>,
  body: unknown,
  afterMs: number,
): Promise<void> {
  return new Promise((resolve) => {
    const req = httpRequest(`${baseUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
    });
    req.on('error', () => resolve());
    req.on('response', (res) => res.resume());
    req.end(JSON.stringify(body));
    setTimeout(() => {
      req.destroy();
      resolve();
    }, afterMs);
  });
}
