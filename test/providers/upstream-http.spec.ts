import { BackendResponseError, BackendUnreachableError } from '../../src/contracts/backend-errors';
import { UpstreamHttp } from '../../src/modules/providers/upstream-http';
import { cleanExcerpt, ndjsonValues, readLines, sseData } from '../../src/modules/providers/upstream-body';
import { closedPortUrl } from '../fakes/fake-server';
import { collect, signal, useBareServer } from './provider-fixtures';

/** A body that delivers each part as a separate chunk, asynchronously. */
async function* chunks(...parts: (string | Buffer)[]): AsyncGenerator<Buffer> {
  for (const part of parts) {
    await Promise.resolve();
    yield Buffer.isBuffer(part) ? part : Buffer.from(part, 'utf8');
  }
}

describe('readLines', () => {
  it('reassembles lines split across chunks and strips CRLF', async () => {
    const lines = await collect(readLines(chunks('fir', 'st\r', '\nsec', 'ond\n\nthi', 'rd')));
    expect(lines).toEqual(['first', 'second', '', 'third']);
  });

  it('decodes a multi-byte UTF-8 character split across chunks', async () => {
    const bytes = Buffer.from('東京 ok\n', 'utf8'); // 東 and 京 are 3 bytes each
    const lines = await collect(readLines(chunks(bytes.subarray(0, 1), bytes.subarray(1, 4), bytes.subarray(4))));
    expect(lines).toEqual(['東京 ok']);
  });

  it('decodes a 4-byte character split in every byte', async () => {
    const bytes = Buffer.from('a😀b', 'utf8');
    const parts = Array.from(bytes, (byte) => Buffer.from([byte]));
    expect(await collect(readLines(chunks(...parts)))).toEqual(['a😀b']);
  });
});

describe('sseData', () => {
  it('yields the data of each event, across chunk boundaries', async () => {
    const events = await collect(
      sseData(
        chunks(
          ': keep-alive comment\n\n',
          'data: {"a":',
          '1}\n',
          '\ndata: {"b":2}\r\n\r\nevent: x\nid: 7\ndata: [DO',
          'NE]\n\n',
        ),
      ),
    );
    expect(events).toEqual(['{"a":1}', '{"b":2}', '[DONE]']);
  });

  it('joins multi-line data and keeps split UTF-8 intact', async () => {
    const bytes = Buffer.from('data: {"t":"é', 'utf8');
    const events = await collect(
      sseData(
        chunks(
          'data: line1\ndata:line2\n\n',
          bytes.subarray(0, bytes.length - 1),
          bytes.subarray(bytes.length - 1),
          '"}\n\n',
        ),
      ),
    );
    expect(events).toEqual(['line1\nline2', '{"t":"é"}']);
  });

  it('does not dispatch an event cut off by the end of the stream', async () => {
    expect(await collect(sseData(chunks('data: 1\n\ndata: 2\n')))).toEqual(['1']);
  });
});

describe('ndjsonValues', () => {
  it('parses lines split across chunks and skips blank lines', async () => {
    const values = await collect(ndjsonValues(chunks('{"a":', '1}\n\n{"b"', ':"ü"}\n{"c":3}')));
    expect(values).toEqual([{ a: 1 }, { b: 'ü' }, { c: 3 }]);
  });

  it('turns garbage into BackendResponseError', async () => {
    const promise = collect(ndjsonValues(chunks('{"a":1}\n<html>\n')));
    await expect(promise).rejects.toThrow(BackendResponseError);
    await expect(promise).rejects.toThrow('upstream sent an unparseable response');
  });
});

describe('cleanExcerpt', () => {
  it('strips control characters and bounds the length', () => {
    expect(cleanExcerpt('a\u001b[31m\nb\u0000c\t d')).toBe('a [31m b c d');
    expect(cleanExcerpt('x'.repeat(500))).toHaveLength(201);
  });
});

describe('UpstreamHttp', () => {
  const server = useBareServer();
  const clients: UpstreamHttp[] = [];

  function client(apiKey: string | null = null, base = server.url): UpstreamHttp {
    const http = new UpstreamHttp(base, { apiKey });
    clients.push(http);
    return http;
  }

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  it('labels the upstream by host and port only', () => {
    expect(client(null, 'http://user:pw@vllm-0:8000/prefix').label).toBe('vllm-0:8000');
    expect(client(null, 'https://api.openai.com').label).toBe('api.openai.com:443');
  });

  it('sends JSON with the bearer key below the base path', async () => {
    let seen: { path?: string; auth?: string; type?: string; body?: string } = {};
    server.handler = (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen = {
          path: req.url,
          auth: req.headers.authorization,
          type: req.headers['content-type'],
          body,
        };
        res.end('{"ok":true}');
      });
    };
    const res = await client('sk-test-key', `${server.url}/prefix/`).request({
      method: 'POST',
      path: '/v1/x',
      json: { a: 1 },
      signal: signal(),
    });
    expect(await res.json()).toEqual({ ok: true });
    expect(seen).toEqual({
      path: '/prefix/v1/x',
      auth: 'Bearer sk-test-key',
      type: 'application/json',
      body: '{"a":1}',
    });
  });

  it('sanitizes error statuses: no URL, no key, no control characters, bounded', async () => {
    const key = 'sk-upstream-secret-123';
    server.handler = (_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          error: {
            message: `boom\u001b[31m\n at ${server.url}/v1/completions key ${key} ${'z'.repeat(400)}`,
          },
        }),
      );
    };
    const err = (await client(key)
      .request({ method: 'GET', path: '/', signal: signal() })
      .catch((e: unknown) => e)) as BackendResponseError;
    expect(err).toBeInstanceOf(BackendResponseError);
    expect(err.upstreamStatus).toBe(500);
    expect(err.message.startsWith('upstream returned HTTP 500: boom')).toBe(true);
    expect(err.message).not.toContain(server.url);
    expect(err.message).not.toContain('127.0.0.1');
    expect(err.message).not.toContain(key);
    // eslint-disable-next-line no-control-regex
    expect(err.message).not.toMatch(/[\u0000-\u001f]/);
    expect(err.message.length).toBeLessThan(260);
  });

  it('redacts the configured key and the upstream address even without URL or key syntax', async () => {
    const key = 'opaque-token-4242';
    const host = server.url.replace('http://', '');
    server.handler = (_req, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `token ${key} rejected by ${host}` }));
    };
    const err = (await client(key)
      .request({ method: 'GET', path: '/', signal: signal() })
      .catch((e: unknown) => e)) as BackendResponseError;
    expect(err.message).toBe('upstream returned HTTP 401: token [redacted] rejected by [redacted]');
  });

  it('reports only the status for a non-JSON error body', async () => {
    server.handler = (_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end(`<html>proxy error for ${server.url}</html>`);
    };
    const promise = client().request({
      method: 'GET',
      path: '/',
      signal: signal(),
    });
    await expect(promise).rejects.toThrow(new BackendResponseError('upstream returned HTTP 502'));
  });

  it('classifies a refused connection as BackendUnreachableError without the address', async () => {
    const dead = await closedPortUrl();
    const err = (await client(null, dead)
      .request({ method: 'GET', path: '/', signal: signal() })
      .catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(BackendUnreachableError);
    expect(err.message).toBe('upstream unreachable (ECONNREFUSED)');
  });

  it('classifies a DNS failure as BackendUnreachableError', async () => {
    const promise = client(null, 'http://no-such-host.invalid:8000').request({
      method: 'GET',
      path: '/',
      signal: signal(),
    });
    await expect(promise).rejects.toBeInstanceOf(BackendUnreachableError);
  });

  it('classifies a reset before any response byte as BackendUnreachableError', async () => {
    server.handler = (req) => req.socket.destroy();
    const promise = client().request({
      method: 'GET',
      path: '/',
      signal: signal(),
    });
    await expect(promise).rejects.toBeInstanceOf(BackendUnreachableError);
  });

  it('classifies a connection lost mid-body as BackendResponseError', async () => {
    server.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 100 });
      res.write('{"partial":');
      setTimeout(() => res.socket?.destroy(), 20);
    };
    const res = await client().request({
      method: 'GET',
      path: '/',
      signal: signal(),
    });
    const err = await res.json().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendResponseError);
    expect((err as Error).message).toBe('upstream connection closed mid-response');
  });

  it('rethrows the abort reason unchanged, before and during the request', async () => {
    server.handler = () => undefined; // never answers
    const reason = new Error('client went away');
    const early = new AbortController();
    early.abort(reason);
    await expect(client().request({ method: 'GET', path: '/', signal: early.signal })).rejects.toBe(reason);

    const late = new AbortController();
    const promise = client().request({ method: 'GET', path: '/', signal: late.signal });
    setTimeout(() => late.abort('timeout-marker'), 20);
    await expect(promise).rejects.toBe('timeout-marker');
  });

  it('rethrows the abort reason while the body is being read', async () => {
    server.handler = (_req, res) => {
      res.writeHead(200);
      res.write('{"a":');
    };
    const ac = new AbortController();
    const res = await client().request({ method: 'GET', path: '/', signal: ac.signal });
    const reason = new Error('deadline');
    setTimeout(() => ac.abort(reason), 20);
    await expect(res.json()).rejects.toBe(reason);
  });
});
