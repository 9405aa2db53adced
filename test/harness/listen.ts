/** Raw HTTP against an in-process app, for tests that must cut a connection mid-request. */
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestApp } from './app';

export async function listenOnLoopback(app: TestApp): Promise<string> {
  const server = app.app!.getHttpServer();
  if (!server.listening) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Sends a JSON POST whose connection the test cuts when it wants (before or during the answer). */
export function openPost(
  baseUrl: string,
  path: string,
  headers: Record<string, string>,
  body: unknown,
): { cut: () => void; closed: Promise<void> } {
  const req = httpRequest(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
  });
  const closed = new Promise<void>((resolve) => req.on('close', () => resolve()));
  req.on('error', () => undefined);
  req.on('response', (res) => res.resume());
  req.end(JSON.stringify(body));
  return { cut: () => req.destroy(), closed };
}

/** Sends a JSON POST and destroys the connection after `afterMs` (before or during the answer). */
export async function postThenDisconnect(
  baseUrl: string,
  path: string,
  headers: Record<string, string>,
  body: unknown,
  afterMs: number,
): Promise<void> {
  const post = openPost(baseUrl, path, headers, body);
  await new Promise((resolve) => setTimeout(resolve, afterMs));
  post.cut();
}
