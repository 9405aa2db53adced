/**
 * API.md conventions that hold on every route: the error envelope (unknown routes, malformed
 * JSON, non-JSON bodies, oversized bodies), X-Request-Id, security headers, no leaks.
 */
import { startTestApp, type TestApp } from './harness/app';
import { describeInProcess } from './harness/environment';
import { adminAuth } from './harness/keys';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.close());

function expectEnvelope(
  res: { status: number; body: any; headers: Record<string, string> },
  status: number,
  code: string,
) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(Object.keys(res.body)).toEqual(['error']);
  expect(res.body.error).toEqual({
    code,
    message: expect.any(String),
    type: expect.any(String),
    param: res.body.error.param ?? null,
    request_id: res.headers['x-request-id'],
  });
  expect(JSON.stringify(res.body)).not.toMatch(/\bat \S+:\d+|node_modules|SELECT|INSERT/);
}

describe('unknown routes', () => {
  it.each([
    ['GET', '/nope'],
    ['POST', '/v1/nope'],
    ['DELETE', '/admin'],
    ['GET', '/v2/generate'],
  ])('%s %s → 404 not_found in the envelope', async (method, path) => {
    const res = await app.http()[method.toLowerCase() as 'get'](path);
    expectEnvelope(res, 404, 'not_found');
  });
});

describe('GET /', () => {
  it('answers a short public pointer to the API, the console, the health checks and the docs (not a bare 404)', async () => {
    const res = await app.http().get('/');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      service: 'llm-server',
      api: expect.arrayContaining(['/v1/chat/completions', '/v1/embeddings', '/v1/generate']),
      console: '/admin/ui',
      health: { live: '/healthz', ready: '/readyz' },
    });
    expect(JSON.stringify(res.body)).not.toMatch(/127\.0\.0\.1|localhost|token/i);
  });
});

describe('request bodies', () => {
  it('malformed JSON → 400 invalid_request', async () => {
    const res = await app
      .http()
      .post('/admin/keys')
      .set(...adminAuth())
      .set('Content-Type', 'application/json')
      .send('{"name": ');
    expectEnvelope(res, 400, 'invalid_request');
  });

  it('a non-JSON body → 415 unsupported_media_type', async () => {
    const res = await app
      .http()
      .post('/admin/keys')
      .set(...adminAuth())
      .set('Content-Type', 'text/plain')
      .send('name=x');
    expectEnvelope(res, 415, 'unsupported_media_type');
    const form = await app
      .http()
      .post('/admin/keys')
      .set(...adminAuth())
      .type('form')
      .send({ name: 'x' });
    expectEnvelope(form, 415, 'unsupported_media_type');
  });

  it('a JSON body in a charset other than UTF-8 → 415', async () => {
    const res = await app
      .http()
      .post('/admin/keys')
      .set(...adminAuth())
      .set('Content-Type', 'application/json; charset=latin1')
      .send('{"name":"x"}');
    expectEnvelope(res, 415, 'unsupported_media_type');
  });

  it('authentication is checked before the body (401 beats 400/415)', async () => {
    const malformed = await app.http().post('/admin/keys').set('Content-Type', 'application/json').send('{oops');
    expectEnvelope(malformed, 401, 'missing_admin_token');
    const notJson = await app.http().post('/admin/keys').set('Content-Type', 'text/plain').send('x');
    expectEnvelope(notJson, 401, 'missing_admin_token');
  });
});

describeInProcess('body limit', 'needs its own app with a small BODY_LIMIT', () => {
  let small: TestApp;
  beforeAll(async () => {
    small = await startTestApp({ env: { BODY_LIMIT: '1kb' } });
  });
  afterAll(() => small.close());

  it('a body over BODY_LIMIT → 413 payload_too_large; a body under it is accepted', async () => {
    const big = await small
      .http()
      .post('/admin/keys')
      .set(...adminAuth())
      .send({ name: 'x', pad: 'y'.repeat(2000) });
    expectEnvelope(big, 413, 'payload_too_large');
    const ok = await small
      .http()
      .post('/admin/keys')
      .set(...adminAuth())
      .send({ name: 'x' });
    expect(ok.status).toBe(201);
  });
});

describe('X-Request-Id', () => {
  it('echoes a valid client id', async () => {
    const res = await app.http().get('/nope').set('X-Request-Id', 'client-123:abc.DEF_9');
    expect(res.headers['x-request-id']).toBe('client-123:abc.DEF_9');
    expect(res.body.error.request_id).toBe('client-123:abc.DEF_9');
  });

  it.each([['has spaces'], ['x'.repeat(129)], ['semi;colon'], ['']])(
    'replaces an invalid id %p with a generated one',
    async (offered) => {
      const res = await app.http().get('/nope').set('X-Request-Id', offered);
      expect(res.headers['x-request-id']).not.toBe(offered);
      expect(res.headers['x-request-id']).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
    },
  );

  it('is on successful responses too', async () => {
    const res = await app
      .http()
      .get('/admin/keys')
      .set(...adminAuth());
    expect(res.status).toBe(200);
    expect(res.headers['x-request-id']).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
  });
});

describe('security headers', () => {
  it('are set, and the framework is not advertised', async () => {
    const res = await app
      .http()
      .get('/admin/keys')
      .set(...adminAuth());
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBeDefined();
    expect(res.headers['content-security-policy']).toContain("default-src 'none'");
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['x-powered-by']).toBeUndefined();
  });
});
