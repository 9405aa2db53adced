/**
 * Hardening (issue "no bypass, no unbilled work, no 5xx from any input"): limits belong to
 * routes, not to spellings of paths; hostile input is a clear 4xx; guessing is refused before
 * any credential is evaluated; revocation cannot be undone by a concurrent change; the admin
 * API can live on its own listener; secrets stay out of logs and upstream settings.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientBucket } from '../src/modules/auth/auth-failure-limiter';
import { loadConfig } from '../src/infra/config/app.config';
import { Database } from '../src/infra/database/database.service';
import { createLogger, serializeError } from '../src/infra/logging/logger';
import { type RunningServer, startServer } from '../src/server';
import { FIXTURE_MODELS, startTestApp, type TestApp, useTestTemplate } from './harness/app';
import { describeInProcess, isRemote, TEST_ADMIN_TOKEN } from './harness/environment';
import { adminAuth, createKey } from './harness/keys';

jest.setTimeout(60_000);

let app: TestApp;
let nextAddress = 1;
/** A client address of its own (failed-auth counts are per address). */
const freshAddress = () => `10.${(nextAddress >> 8) & 255}.${nextAddress++ & 255}.1`;

beforeAll(async () => {
  app = await startTestApp({
    env: { TRUST_PROXY_HOPS: '1', AUTH_FAILURE_LIMIT: '3', METRICS_TOKEN: 'metrics-token-0123456789abcdef' },
  });
});
afterAll(() => app?.close());

/** From an address of its own, so refused keys in one test never lock another test out. */
const generate = (key: string, path = '/v1/generate', body: Record<string, unknown> = { prompt: 'hi' }) =>
  app
    .http()
    .post(path)
    .set('X-API-Key', key)
    .set('X-Forwarded-For', freshAddress())
    .set('Cache-Control', 'no-store')
    .send(body);

describe('limits belong to the route, not to a spelling of its path', () => {
  it('routing is case-sensitive: other spellings of a route reach no route (404), with no work done', async () => {
    const { key } = await createKey(app, { rpm_limit: 1 });
    for (const path of ['/V1/GENERATE', '/V1/generate', '/v1/Generate', '/v1/%67enerate']) {
      const res = await generate(key, path);
      expect({ path, status: res.status, code: res.body.error?.code }).toEqual({
        path,
        status: 404,
        code: 'not_found',
      });
    }
    // None of them counted: the one request of the minute is still available.
    expect((await generate(key)).status).toBe(200);
  });

  it('a trailing slash reaches the same route, with the same RPM, TPM and headers', async () => {
    const { key } = await createKey(app, { rpm_limit: 1 });
    expect((await generate(key)).status).toBe(200);
    const again = await generate(key, '/v1/generate/');
    expect(again.status).toBe(429);
    expect(again.headers['x-ratelimit-limit']).toBe('1');
    expect(again.headers['retry-after']).toBeDefined();

    const tpm = await createKey(app, { tpm_limit: 1 });
    expect((await generate(tpm.key, '/v1/generate/')).status).toBe(200);
    const over = await generate(tpm.key, '/v1/generate/');
    expect(over.status).toBe(429);
    expect(over.body.error.message).toMatch(/tokens per minute/);
  });

  it('admin routes keep their token check under every spelling that reaches them', async () => {
    expect((await app.http().get('/admin/keys/')).status).toBe(401);
    expect(
      (
        await app
          .http()
          .get('/ADMIN/KEYS')
          .set(...adminAuth())
      ).status,
    ).toBe(404);
    expect((await app.http().get('/Metrics')).status).toBe(404);
  });
});

describe('input that cannot hurt: always a 4xx from the table, never a 500', () => {
  const deep = (levels: number) => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);

  it('JSON nested deeper than 64 levels is 400 before anything reads it, even 5000 levels', async () => {
    const { key } = await createKey(app);
    for (const levels of [65, 5000]) {
      const started = Date.now();
      const res = await app
        .http()
        .post('/v1/generate')
        .set('X-API-Key', key)
        .set('Content-Type', 'application/json')
        .send(deep(levels));
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'invalid_request', message: expect.stringContaining('64') });
      expect(Date.now() - started).toBeLessThan(2000);
    }
    // 64 levels are within the limit: the body is refused for what it says, not for its depth.
    const res = await app
      .http()
      .post('/admin/keys')
      .set(...adminAuth())
      .set('Content-Type', 'application/json')
      .send(deep(64));
    expect(res.status).toBe(400);
    expect(res.body.error.message).not.toMatch(/nesting/);
  });

  it.each([
    ['a NUL byte', 'a\u0000b'],
    ['a lone high surrogate', 'a\ud800b'],
    ['a lone low surrogate', '\udc00'],
  ])('%s in any string field is 400 naming the field', async (_label, value) => {
    const created = await app
      .http()
      .post('/admin/keys')
      .set(...adminAuth())
      .send({ name: value });
    expect(created.status).toBe(400);
    expect(created.body.error).toMatchObject({ code: 'invalid_request', param: 'name' });

    const { key, id } = await createKey(app);
    const patched = await app
      .http()
      .patch(`/admin/keys/${id}`)
      .set(...adminAuth())
      .send({ name: value });
    expect(patched.status).toBe(400);
    expect(patched.body.error.param).toBe('name');

    const generated = await generate(key, '/v1/generate', { prompt: value });
    expect(generated.status).toBe(400);
    expect(generated.body.error.param).toBe('prompt');

    const chat = await generate(key, '/v1/chat/completions', { messages: [{ role: 'user', content: value }] });
    expect(chat.status).toBe(400);
    expect(chat.body.error.param).toBe('messages[0].content');

    const fieldName = await generate(key, '/v1/generate', { prompt: 'p', [value]: 1 });
    expect(fieldName.status).toBe(400);
  });

  it('dates outside years 0001..9999 are 400, never a database error', async () => {
    const { id } = await createKey(app);
    for (const [from, to] of [
      ['0000-01-01', '2026-01-01'],
      ['2026-01-01', '0000-12-31'],
    ]) {
      const res = await app
        .http()
        .get(`/admin/keys/${id}/usage`)
        .query({ from, to })
        .set(...adminAuth());
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
    }
    for (const expires_at of ['0000-06-01T00:00:00Z', '+010000-01-01T00:00:00Z', '10000-01-01T00:00:00Z']) {
      const res = await app
        .http()
        .post('/admin/keys')
        .set(...adminAuth())
        .send({ name: 'k', expires_at });
      expect({ expires_at, status: res.status }).toEqual({ expires_at, status: 400 });
    }
    const latest = await app
      .http()
      .post('/admin/keys')
      .set(...adminAuth())
      .send({ name: 'k', expires_at: '9999-12-31T23:59:59Z' });
    expect(latest.status).toBe(201);
  });

  it('oversized arrays are 400 naming the field: chat messages, content parts, stop, models', async () => {
    const { key } = await createKey(app);
    const messages = Array.from({ length: 2049 }, () => ({ role: 'user', content: 'x' }));
    const tooManyMessages = await generate(key, '/v1/chat/completions', { messages });
    expect(tooManyMessages.status).toBe(400);
    expect(tooManyMessages.body.error.param).toBe('messages');
    const parts = Array.from({ length: 257 }, () => ({ type: 'text', text: 'x' }));
    const tooManyParts = await generate(key, '/v1/chat/completions', { messages: [{ role: 'user', content: parts }] });
    expect(tooManyParts.status).toBe(400);
    const stop = await generate(key, '/v1/generate', { prompt: 'p', stop: ['a', 'b', 'c', 'd', 'e'] });
    expect(stop.body.error.param).toBe('stop');
    const models = await app
      .http()
      .post('/admin/keys')
      .set(...adminAuth())
      .send({ name: 'k', models: Array.from({ length: 101 }, () => 'mock-a') });
    expect(models.body.error.param).toBe('models');
  });
});

describeInProcess(
  'failed authentications are counted per address and per kind of secret',
  'sets client addresses and spies on the database',
  () => {
    it('past the client-key limit bad keys get 429, while the right key and the admin are still served', async () => {
      const { key } = await createKey(app);
      const address = freshAddress();
      const as = (req: ReturnType<ReturnType<TestApp['http']>['get']>) => req.set('X-Forwarded-For', address);
      for (let i = 0; i < 3; i += 1) {
        expect((await as(app.http().get('/v1/models')).set('X-API-Key', `sk-${'x'.repeat(43)}`)).status).toBe(401);
      }
      const refused = await as(app.http().get('/v1/models')).set('X-API-Key', `sk-${'y'.repeat(43)}`);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      // One client's bad key never locks out the others behind the same address (API.md).
      expect((await as(app.http().get('/v1/models')).set('X-API-Key', key)).status).toBe(200);
      expect((await as(app.http().get('/admin/keys')).set(...adminAuth())).status).toBe(200);
      app.clock.advance(60_000);
      expect((await as(app.http().get('/v1/models')).set('X-API-Key', `sk-${'x'.repeat(43)}`)).status).toBe(401);
    });

    it('past the admin-token limit the right admin and metrics tokens get 429 until the window ends; client keys do not', async () => {
      const { key } = await createKey(app);
      const address = freshAddress();
      const as = (req: ReturnType<ReturnType<TestApp['http']>['get']>) => req.set('X-Forwarded-For', address);
      for (let i = 0; i < 3; i += 1) {
        expect((await as(app.http().get('/admin/keys')).set('Authorization', `Bearer wrong-${i}`)).status).toBe(401);
      }
      expect((await as(app.http().get('/admin/keys')).set('Authorization', 'Bearer wrong-again')).status).toBe(429);
      // Past the limit the right tokens are not even looked at: a right guess would show.
      const right = [
        await as(app.http().get('/admin/keys')).set(...adminAuth()),
        await as(app.http().get('/metrics')).set('Authorization', 'Bearer metrics-token-0123456789abcdef'),
      ];
      for (const res of right) {
        expect(res.status).toBe(429);
        expect(res.body.error.code).toBe('rate_limit_exceeded');
        expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      }
      expect((await as(app.http().get('/v1/models')).set('X-API-Key', key)).status).toBe(200);
      // Other addresses are unaffected; the address is accepted again once the window ends.
      expect(
        (
          await app
            .http()
            .get('/admin/keys')
            .set('X-Forwarded-For', freshAddress())
            .set(...adminAuth())
        ).status,
      ).toBe(200);
      app.clock.advance(60_000);
      expect((await as(app.http().get('/admin/keys')).set(...adminAuth())).status).toBe(200);
    });

    it('IPv6 clients are counted per /64', async () => {
      expect(clientBucket('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
      expect(clientBucket('2001:0db8:0001:0002:ffff:ffff:ffff:9')).toBe('2001:db8:1:2::/64');
      expect(clientBucket('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64');
      expect(clientBucket('::ffff:203.0.113.7')).toBe('203.0.113.7');
      expect(clientBucket('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
      for (const address of ['2001:db8:9:9::1', '2001:db8:9:9::2', '2001:db8:9:9:aaaa::3', '2001:db8:9:9:bbbb::4']) {
        await app.http().get('/admin/keys').set('X-Forwarded-For', address).set('Authorization', 'Bearer wrong');
      }
      const sameSlash64 = await app
        .http()
        .get('/admin/keys')
        .set('X-Forwarded-For', '2001:db8:9:9:ffff::ffff')
        .set(...adminAuth());
      expect(sameSlash64.status).toBe(429);
      const otherSlash64 = await app
        .http()
        .get('/admin/keys')
        .set('X-Forwarded-For', '2001:db8:9:8::1')
        .set(...adminAuth());
      expect(otherSlash64.status).toBe(200);
    });

    it('malformed keys are refused by shape, and unknown keys are remembered: a flood does not reach the database', async () => {
      const db = app.app!.get(Database);
      const spy = jest.spyOn(db, 'query');
      // Key lookups only: the usage ledger's background flush may write meanwhile.
      const lookups = () => spy.mock.calls.filter(([sql]) => String(sql).includes('FROM api_keys'));
      try {
        const address = freshAddress();
        const malformed = [
          'nope',
          'sk-short',
          `sk-${'a'.repeat(43)}!`,
          `Bearer-${'a'.repeat(60)}`,
          `sk-${'a'.repeat(400)}`,
        ];
        for (const key of malformed) {
          await app.http().get('/v1/models').set('X-Forwarded-For', address).set('X-API-Key', key);
          app.clock.advance(60_000); // stay under the failed-auth limit
        }
        expect(lookups()).toHaveLength(0);
        const unknown = `sk-${'z'.repeat(43)}`;
        for (let i = 0; i < 3; i += 1) {
          await app.http().get('/v1/models').set('X-Forwarded-For', freshAddress()).set('X-API-Key', unknown);
        }
        expect(lookups()).toHaveLength(1);
      } finally {
        spy.mockRestore();
      }
    });
  },
);

describe('revocation is one-way', () => {
  it('PATCH and rotate of a revoked key are 409 key_revoked and never revive it', async () => {
    const { key, id } = await createKey(app);
    expect(
      (
        await app
          .http()
          .delete(`/admin/keys/${id}`)
          .set(...adminAuth())
      ).status,
    ).toBe(204);
    const patch = await app
      .http()
      .patch(`/admin/keys/${id}`)
      .set(...adminAuth())
      .send({ active: true, name: 'back' });
    expect(patch.status).toBe(409);
    expect(patch.body.error.code).toBe('key_revoked');
    const rotate = await app
      .http()
      .post(`/admin/keys/${id}/rotate`)
      .set(...adminAuth());
    expect(rotate.status).toBe(409);
    expect(
      (
        await app
          .http()
          .delete(`/admin/keys/${id}`)
          .set(...adminAuth())
      ).status,
    ).toBe(204); // idempotent
    const view = await app
      .http()
      .get(`/admin/keys/${id}`)
      .set(...adminAuth());
    expect(view.body).toMatchObject({ active: false, name: 'test key' });
    expect(view.body.revoked_at).not.toBeNull();
    expect((await generate(key)).status).toBe(401);
  });

  it('DELETE racing PATCH or rotate, many times: the key always ends revoked and no key of it works', async () => {
    for (let round = 0; round < 15; round += 1) {
      const { key, id } = await createKey(app);
      const [change, revoke] = await Promise.all([
        round % 2 === 0
          ? app
              .http()
              .patch(`/admin/keys/${id}`)
              .set(...adminAuth())
              .send({ active: true, rpm_limit: 5 })
          : app
              .http()
              .post(`/admin/keys/${id}/rotate`)
              .set(...adminAuth()),
        app
          .http()
          .delete(`/admin/keys/${id}`)
          .set(...adminAuth()),
      ]);
      expect(revoke.status).toBe(204);
      expect([200, 409]).toContain(change.status);
      const view = await app
        .http()
        .get(`/admin/keys/${id}`)
        .set(...adminAuth());
      expect(view.body).toMatchObject({ active: false });
      expect(view.body.revoked_at).not.toBeNull();
      // In-process each refused key counts for an address of its own; a remote server sees one.
      if (isRemote) continue;
      for (const plaintext of [key, change.body.key].filter(Boolean)) {
        expect((await generate(plaintext as string)).status).toBe(401);
      }
    }
  });
});

describe('secrets stay where they belong', () => {
  it('the error serializer never logs SQL, its parameters or the values PostgreSQL quotes', () => {
    const error = Object.assign(new Error('duplicate key value violates unique constraint'), {
      code: '23505',
      query: 'SELECT * FROM api_keys WHERE key_hash = $1',
      parameters: ['9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'],
      detail: 'Key (name)=(secret name) already exists.',
      cause: Object.assign(new Error('inner'), { parameters: ['hash-again'] }),
    });
    const text = JSON.stringify(serializeError(error));
    expect(text).toContain('23505');
    for (const secret of ['SELECT', '9f86d081', 'secret name', 'hash-again']) expect(text).not.toContain(secret);
  });

  it('the readiness body names models and states, never an upstream host or port', async () => {
    const res = await app.http().get('/readyz');
    expect(res.status).toBe(200);
    // host:port, never a JSON number after its key ("responseTime":17).
    expect(JSON.stringify(res.body)).not.toMatch(/127\.0\.0\.1|localhost|[a-z0-9.-]+:\d{2,5}\b/i);
  });
});

/** A listening server (real sockets) with ADMIN_PORT: the public and the admin listener. */
async function startWithAdminPort(
  env: Record<string, string>,
): Promise<{ server: RunningServer; publicBase: string; adminBase: string }> {
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    ADMIN_PORT: '0',
    HOST: '127.0.0.1',
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    DATA_DIR: mkdtempSync(join(tmpdir(), 'llm-admin-port-')),
    MODELS_FILE: FIXTURE_MODELS,
    LOG_LEVEL: 'silent',
    BACKEND_PROBE_INTERVAL_MS: '0',
    ...env,
  });
  const server = await startServer(useTestTemplate(config), createLogger('silent'));
  return { server, publicBase: `http://127.0.0.1:${server.port}`, adminBase: `http://127.0.0.1:${server.adminPort}` };
}

describeInProcess('ADMIN_PORT: the admin API and /metrics on their own listener', 'starts a listening server', () => {
  let server: RunningServer;
  let publicBase: string;
  let adminBase: string;

  beforeAll(async () => {
    ({ server, publicBase, adminBase } = await startWithAdminPort({}));
  });
  afterAll(() => server?.shutdown('test'));

  const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

  it('keeps idle client connections longer than a load balancer (65 s), with the headers timeout above it', () => {
    const http = server.app.getHttpServer() as import('node:http').Server;
    expect(http.keepAliveTimeout).toBe(65_000);
    expect(http.headersTimeout).toBe(66_000);
  });

  it('the admin API and /metrics answer only on the admin port; the public port answers them 404', async () => {
    expect(server.adminPort).not.toBe(server.port);
    const created = await fetch(`${adminBase}/admin/keys`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'k' }),
    });
    expect(created.status).toBe(201);
    const { key } = (await created.json()) as { key: string };
    expect((await fetch(`${adminBase}/metrics`)).status).toBe(200);

    for (const path of ['/admin/keys', '/metrics']) {
      const res = await fetch(`${publicBase}${path}`, { headers: admin });
      expect({ path, status: res.status }).toEqual({ path, status: 404 });
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('not_found');
    }
    // Client traffic belongs to the public port; probes answer on both.
    expect((await fetch(`${publicBase}/v1/models`, { headers: { 'x-api-key': key } })).status).toBe(200);
    expect((await fetch(`${adminBase}/v1/models`, { headers: { 'x-api-key': key } })).status).toBe(404);
    for (const base of [publicBase, adminBase]) expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });
});

describeInProcess('ADMIN_PORT never trusts X-Forwarded-For', 'starts a listening server', () => {
  let server: RunningServer;
  let publicBase: string;
  let adminBase: string;

  beforeAll(async () => {
    ({ server, publicBase, adminBase } = await startWithAdminPort({ TRUST_PROXY_HOPS: '1', AUTH_FAILURE_LIMIT: '3' }));
  });
  afterAll(() => server?.shutdown('test'));

  it('wrong admin tokens are counted against the peer, whatever X-Forwarded-For says', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i += 1) {
      const res = await fetch(`${adminBase}/admin/keys`, {
        headers: { authorization: `Bearer wrong-${i}`, 'x-forwarded-for': `198.51.100.${i + 1}` },
      });
      statuses.push(res.status);
    }
    expect(statuses).toEqual([401, 401, 401, 429, 429, 429, 429, 429]);
    // A forged header cannot pick another bucket for the right token either.
    const forged = await fetch(`${adminBase}/admin/keys`, {
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'x-forwarded-for': '203.0.113.9' },
    });
    expect(forged.status).toBe(429);
  });

  it('the public port still takes the client address from X-Forwarded-For (TRUST_PROXY_HOPS=1)', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i += 1) {
      const res = await fetch(`${publicBase}/v1/models`, {
        headers: { 'x-api-key': `sk-${'q'.repeat(43)}`, 'x-forwarded-for': `192.0.2.${i + 1}` },
      });
      statuses.push(res.status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
  });
});
