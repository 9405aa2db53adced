/**
 * The real entry point on SIGTERM: src/main.ts as a child process keeps a slow stream going
 * until it finishes, then closes everything and exits 0.
 */
import type { ChildProcess } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURE_MODELS } from '../harness/app';
import { TEST_ADMIN_TOKEN } from '../harness/environment';
import { startServerProcess } from '../harness/process';
import { sseEvents } from '../harness/sse';

jest.setTimeout(60_000);

describe('the server process on SIGTERM', () => {
  let child: ChildProcess | null = null;
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  it('lets an in-flight stream finish, then exits 0', async () => {
    const server = await startServerProcess({
      NODE_ENV: 'test',
      DATABASE_URL: 'pglite://memory',
      DATA_DIR: mkdtempSync(join(tmpdir(), 'llm-sigterm-')),
      MODELS_FILE: FIXTURE_MODELS,
      ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      SHUTDOWN_GRACE_MS: '20000',
      LOG_LEVEL: 'info',
    });
    child = server.proc;
    const { base, proc } = server;
    const created = await fetch(`${base}/admin/keys`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
      body: JSON.stringify({ name: 'sigterm' }),
    });
    expect(created.status).toBe(201);
    const { key } = (await created.json()) as { key: string };

    // 6 words, one every 150 ms: SIGTERM arrives after the first.
    const streamed = new Promise<{ status: number; body: string; error: Error | null }>((resolve) => {
      const req = httpRequest(`${base}/v1/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': key },
      });
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (body === '') proc.kill('SIGTERM');
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, error: null }));
        res.on('error', (error) => resolve({ status: res.statusCode ?? 0, body, error }));
      });
      req.on('error', (error) => resolve({ status: 0, body: '', error }));
      req.end(JSON.stringify({ prompt: '[mock:slow:150][mock:echo] one two three four five six', stream: true }));
    });

    const result = await streamed;
    expect(result.error).toBeNull();
    expect(result.status).toBe(200);
    const events = sseEvents(result.body);
    expect(events.at(-1)).toBe('[DONE]');
    expect(events.at(-2)).toMatchObject({ done: true, output: 'one two three four five six' });

    expect(await server.exited).toEqual({ code: 0, signal: null });
    const messages = server
      .stdout()
      .split('\n')
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as { msg: string }).msg);
    expect(messages).toContain('shutting down: draining requests');
    expect(messages).toContain('shutdown complete');
    expect(messages.indexOf('shutting down: draining requests')).toBeLessThan(messages.indexOf('shutdown complete'));
  });
});
