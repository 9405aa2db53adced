/**
 * Authentication and the admin API (the seed's test_auth): every 401 path, Bearer keys,
 * admin CRUD, rotation, revocation, validation errors, and no secrets in listings.
 */
import { createHash, randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { startTestApp, type TestApp } from './harness/app';
import { describeInProcess, describeServices, TEST_ADMIN_TOKEN } from './harness/environment';
import { adminAuth, createKey, modelNames } from './harness/keys';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.close());

function expectError(
  res: { status: number; body: any; headers: Record<string, string> },
  status: number,
  code: string,
) {
  expect(res.status).toBe(status);
  expect(res.body.error.code).toBe(code);
  expect(res.body.error).toHaveProperty('param');
  expect(typeof res.body.error.message).toBe('string');
  expect(typeof res.body.error.type).toBe('string');
  expect(res.body.error.request_id).toBe(res.headers['x-request-id']);
}

describe('client API keys', () => {
  it('401 missing_api_key without a key', async () => {
    const res = await app.http().get('/v1/models');
    expectError(res, 401, 'missing_api_key');
  });

  it('401 missing_api_key for an Authorization header that is not Bearer', async () => {
    const res = await app.http().get('/v1/models').set('Authorization', 'Basic dXNlcjpwYXNz');
    expectError(res, 401, 'missing_api_key');
  });

  it('401 invalid_api_key for an unknown key, in X-API-Key and in Bearer', async () => {
    const unknown = `sk-${'A'.repeat(43)}`;
    expectError(await app.http().get('/v1/models').set('X-API-Key', unknown), 401, 'invalid_api_key');
    expectError(await app.http().get('/v1/models').set('Authorization', `Bearer ${unknown}`), 401, 'invalid_api_key');
  });

  it('accepts a key in X-API-Key and as Authorization: Bearer', async () => {
    const { key } = await createKey(app);
    expect((await app.http().get('/v1/models').set('X-API-Key', key)).status).toBe(200);
    expect((await app.http().get('/v1/models').set('Authorization', `Bearer ${key}`)).status).toBe(200);
  });

  it('keys have the documented format: sk- and at least 32 random bytes in base64url', async () => {
    const { key, view } = await createKey(app);
    expect(key).toMatch(/^sk-[A-Za-z0-9_-]{43,}$/);
    expect(key.startsWith(String(view.key_prefix))).toBe(true);
    expect(String(view.key_prefix).length).toBeLessThan(16);
  });

  it('401 invalid_api_key once a key is revoked, and it stays readable', async () => {
    const { key, id } = await createKey(app);
    const revoke = await app
      .http()
      .delete(`/admin/keys/${id}`)
      .set(...adminAuth());
    expect(revoke.status).toBe(204);
    expectError(await app.http().get('/v1/models').set('X-API-Key', key), 401, 'invalid_api_key');
    const read = await app
      .http()
      .get(`/admin/keys/${id}`)
      .set(...adminAuth());
    expect(read.status).toBe(200);
    expect(read.body.active).toBe(false);
    expect(Date.parse(read.body.revoked_at)).not.toBeNaN();
  });

  it('401 invalid_api_key while inactive, and accepted again when re-activated', async () => {
    const { key, id } = await createKey(app);
    await app
      .http()
      .patch(`/admin/keys/${id}`)
      .set(...adminAuth())
      .send({ active: false })
      .expect(200);
    expectError(await app.http().get('/v1/models').set('X-API-Key', key), 401, 'invalid_api_key');
    await app
      .http()
      .patch(`/admin/keys/${id}`)
      .set(...adminAuth())
      .send({ active: true })
      .expect(200);
    expect((await app.http().get('/v1/models').set('X-API-Key', key)).status).toBe(200);
  });

  it('rotation returns a new key once; the old key stops working at once', async () => {
    const { key: oldKey, id } = await createKey(app);
    const rotated = await app
      .http()
      .post(`/admin/keys/${id}/rotate`)
      .set(...adminAuth());
    expect(rotated.status).toBe(200);
    expect(rotated.body.id).toBe(id);
    expect(rotated.body.key).toMatch(/^sk-/);
    expect(rotated.body.key).not.toBe(oldKey);
    expectError(await app.http().get('/v1/models').set('X-API-Key', oldKey), 401, 'invalid_api_key');
    expect((await app.http().get('/v1/models').set('X-API-Key', rotated.body.key)).status).toBe(200);
  });

  it('a revoked key cannot be rotated or re-activated (409 key_revoked)', async () => {
    const { id } = await createKey(app);
    await app
      .http()
      .delete(`/admin/keys/${id}`)
      .set(...adminAuth())
      .expect(204);
    expectError(
      await app
        .http()
        .post(`/admin/keys/${id}/rotate`)
        .set(...adminAuth()),
      409,
      'key_revoked',
    );
    expectError(
      await app
        .http()
        .patch(`/admin/keys/${id}`)
        .set(...adminAuth())
        .send({ active: true }),
      409,
      'key_revoked',
    );
  });

  it('/v1/models lists only the models the key may use', async () => {
    const last = (await modelNames(app)).at(-1)!; // mock-b in-process; the only model (tiny) against the image's config
    const { key } = await createKey(app, { models: [last] });
    const res = await app.http().get('/v1/models').set('X-API-Key', key).expect(200);
    expect(res.body.object).toBe('list');
    expect(res.body.data.map((m: { id: string }) => m.id)).toEqual([last]);
  });
});

describeInProcess('key expiry', 'moves the injected clock', () => {
  it('401 invalid_api_key after expires_at passes', async () => {
    const expiresAt = new Date(app.clock.now().getTime() + 60_000).toISOString();
    const { key } = await createKey(app, { expires_at: expiresAt });
    expect((await app.http().get('/v1/models').set('X-API-Key', key)).status).toBe(200);
    app.clock.advance(61_000);
    expectError(await app.http().get('/v1/models').set('X-API-Key', key), 401, 'invalid_api_key');
  });
});

describe('admin authentication', () => {
  it('401 missing_admin_token without a token', async () => {
    expectError(await app.http().get('/admin/keys'), 401, 'missing_admin_token');
  });

  it('401 invalid_admin_token for a wrong token', async () => {
    const res = await app.http().get('/admin/keys').set('Authorization', `Bearer ${TEST_ADMIN_TOKEN}x`);
    expectError(res, 401, 'invalid_admin_token');
  });

  it('a client API key is not an admin token', async () => {
    const { key } = await createKey(app);
    expectError(await app.http().get('/admin/keys').set('Authorization', `Bearer ${key}`), 401, 'invalid_admin_token');
  });
});

describe('admin key CRUD', () => {
  it('creates a key with every stored field and returns the plaintext once', async () => {
    const [model] = await modelNames(app);
    const expiresAt = new Date(app.clock.now().getTime() + 86_400_000).toISOString();
    const res = await app
      .http()
      .post('/admin/keys')
      .set(...adminAuth())
      .send({
        name: 'full',
        rpm_limit: 10,
        tpm_limit: 1000,
        monthly_quota: 50,
        monthly_token_quota: 5000,
        models: [model],
        expires_at: expiresAt,
      });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      key: expect.stringMatching(/^sk-/),
      name: 'full',
      key_prefix: expect.any(String),
      rpm_limit: 10,
      tpm_limit: 1000,
      monthly_quota: 50,
      monthly_token_quota: 5000,
      models: [model],
      active: true,
      created_at: expect.any(String),
      expires_at: expiresAt,
      revoked_at: null,
      quota_reset_at: expect.stringMatching(/^\d{4}-\d{2}-01T00:00:00\.000Z$/),
      max_concurrent: null,
      priority: 'normal',
      weight: 1,
      team_id: null,
      monthly_budget: null,
    });
    const read = await app
      .http()
      .get(`/admin/keys/${res.body.id}`)
      .set(...adminAuth())
      .expect(200);
    expect(read.body.key).toBeUndefined();
    expect(read.body.usage).toEqual({ requests: 0, tokens: 0, cost: 0, quota_reset_at: res.body.quota_reset_at });
  });

  it('never shows a plaintext key or its hash in listings or reads', async () => {
    const { key, id } = await createKey(app, { name: 'secret-check' });
    const list = await app
      .http()
      .get('/admin/keys?limit=100')
      .set(...adminAuth())
      .expect(200);
    const one = await app
      .http()
      .get(`/admin/keys/${id}`)
      .set(...adminAuth())
      .expect(200);
    for (const body of [JSON.stringify(list.body), JSON.stringify(one.body)]) {
      expect(body).not.toContain(key);
      expect(body).not.toContain(sha256(key));
      expect(body).not.toMatch(/key_hash|"key"/);
    }
  });

  it('paginates with limit and next_cursor, each key once', async () => {
    // Its own keys only (a name no other test uses, found with `q`): against a shared server
    // (API_BASE) other files create keys meanwhile, and there may be more than a page of them.
    const tag = `page-${randomBytes(4).toString('hex')}`;
    for (let i = 0; i < 5; i += 1) {
      await createKey(app, { name: `${tag}-${i}` });
      app.clock.advance(1);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `q=${tag}&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const res = await app
        .http()
        .get(`/admin/keys?${query}`)
        .set(...adminAuth())
        .expect(200);
      expect(res.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.data.map((k: { id: string }) => k.id));
      cursor = res.body.next_cursor;
      pages += 1;
    } while (cursor && pages < 100);
    const all = await app
      .http()
      .get(`/admin/keys?q=${tag}&limit=100`)
      .set(...adminAuth())
      .expect(200);
    expect(all.body.next_cursor).toBeNull();
    expect(seen).toEqual(all.body.data.map((k: { id: string }) => k.id));
    expect(seen).toHaveLength(5);
    expect(pages).toBe(3);
  });

  it('rejects bad list parameters with 400 naming them', async () => {
    for (const [query, param] of [
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['limit=ten', 'limit'],
      ['cursor=garbage', 'cursor'],
    ]) {
      const res = await app
        .http()
        .get(`/admin/keys?${query}`)
        .set(...adminAuth());
      expectError(res, 400, 'invalid_request');
      expect(res.body.error.param).toBe(param);
    }
  });

  it('changes name, limits, quotas, models and expiry with PATCH', async () => {
    const model = (await modelNames(app)).at(-1)!;
    const { id } = await createKey(app, { rpm_limit: 5 });
    const expiresAt = new Date(app.clock.now().getTime() + 3_600_000).toISOString();
    const res = await app
      .http()
      .patch(`/admin/keys/${id}`)
      .set(...adminAuth())
      .send({
        name: 'renamed',
        rpm_limit: null,
        tpm_limit: 9,
        monthly_quota: 3,
        monthly_token_quota: null,
        models: [model],
        expires_at: expiresAt,
      });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      name: 'renamed',
      rpm_limit: null,
      tpm_limit: 9,
      monthly_quota: 3,
      monthly_token_quota: null,
      models: [model],
      expires_at: expiresAt,
    });
  });

  it('404 key_not_found for unknown and malformed ids, on every route', async () => {
    for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid', "1' OR '1'='1"]) {
      const path = `/admin/keys/${encodeURIComponent(id)}`;
      const requests = [
        () => app.http().get(path),
        () => app.http().patch(path).send({ name: 'x' }),
        () => app.http().post(`${path}/rotate`),
        () => app.http().delete(path),
        () => app.http().get(`${path}/usage`),
      ];
      for (const request of requests) expectError(await request().set(...adminAuth()), 404, 'key_not_found');
    }
  });

  it('serves the usage ledger per day and model, validating from/to', async () => {
    const { id } = await createKey(app);
    const res = await app
      .http()
      .get(`/admin/keys/${id}/usage?from=2026-11-01&to=2026-11-30`)
      .set(...adminAuth());
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ data: [] });
    for (const [query, param] of [
      ['from=2026-13-01', 'from'],
      ['to=yesterday', 'to'],
      ['from=2026-11-30&to=2026-11-01', 'from'],
    ]) {
      const bad = await app
        .http()
        .get(`/admin/keys/${id}/usage?${query}`)
        .set(...adminAuth());
      expectError(bad, 400, 'invalid_request');
      expect(bad.body.error.param).toBe(param);
    }
  });
});

describe('admin validation errors (400 invalid_request naming the field)', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['name missing', {}, 'name'],
    ['name empty', { name: '' }, 'name'],
    ['name not a string', { name: 5 }, 'name'],
    ['rpm_limit as a string', { name: 'x', rpm_limit: '10' }, 'rpm_limit'],
    ['rpm_limit zero', { name: 'x', rpm_limit: 0 }, 'rpm_limit'],
    ['rpm_limit fractional', { name: 'x', rpm_limit: 1.5 }, 'rpm_limit'],
    ['tpm_limit negative', { name: 'x', tpm_limit: -1 }, 'tpm_limit'],
    ['monthly_quota negative', { name: 'x', monthly_quota: -1 }, 'monthly_quota'],
    ['monthly_token_quota as a string', { name: 'x', monthly_token_quota: '100' }, 'monthly_token_quota'],
    ['models not a list', { name: 'x', models: 'mock-a' }, 'models'],
    ['models naming no model', { name: 'x', models: ['nope'] }, 'models'],
    ['models empty', { name: 'x', models: [] }, 'models'],
    ['expires_at not a date', { name: 'x', expires_at: 'tomorrow' }, 'expires_at'],
    ['expires_at in the past', { name: 'x', expires_at: '2000-01-01T00:00:00Z' }, 'expires_at'],
    ['unknown field', { name: 'x', colour: 'blue' }, 'colour'],
  ];
  it.each(cases)('POST /admin/keys: %s', async (_label, body, param) => {
    const res = await app
      .http()
      .post('/admin/keys')
      .set(...adminAuth())
      .send(body);
    expectError(res, 400, 'invalid_request');
    expect(res.body.error.param).toBe(param);
  });

  it('PATCH rejects null for fields that cannot be null, and unknown fields', async () => {
    const { id } = await createKey(app);
    for (const [body, param] of [
      [{ name: null }, 'name'],
      [{ active: 'false' }, 'active'],
      [{ key_hash: 'x' }, 'key_hash'],
    ] as const) {
      const res = await app
        .http()
        .patch(`/admin/keys/${id}`)
        .set(...adminAuth())
        .send(body);
      expectError(res, 400, 'invalid_request');
      expect(res.body.error.param).toBe(param);
    }
  });

  it('rejects a body that is not a JSON object', async () => {
    const res = await app
      .http()
      .post('/admin/keys')
      .set(...adminAuth())
      .set('Content-Type', 'application/json')
      .send('[1,2]');
    expectError(res, 400, 'invalid_request');
  });
});

describeInProcess('failed authentication attempts', 'needs its own app with a low AUTH_FAILURE_LIMIT', () => {
  let limited: TestApp;
  beforeAll(async () => {
    limited = await startTestApp({ env: { AUTH_FAILURE_LIMIT: '3' } });
  });
  afterAll(() => limited.close());

  it('429 rate_limit_exceeded with Retry-After after too many failures from one address; valid keys are still served', async () => {
    const { key } = await createKey(limited);
    for (let i = 0; i < 3; i += 1) {
      expectError(await limited.http().get('/v1/models').set('X-API-Key', `sk-wrong-${i}`), 401, 'invalid_api_key');
    }
    const blocked = await limited.http().get('/v1/models').set('X-API-Key', 'sk-wrong-again');
    expectError(blocked, 429, 'rate_limit_exceeded');
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    // A valid key from the same address is never locked out by another client's bad keys.
    expect((await limited.http().get('/v1/models').set('X-API-Key', key)).status).toBe(200);
    // Admin tokens are counted apart: client-key failures never count toward their limit.
    expectError(
      await limited.http().get('/admin/keys').set('Authorization', 'Bearer wrong'),
      401,
      'invalid_admin_token',
    );
    // The window passes.
    limited.clock.advance(61_000);
    expectError(await limited.http().get('/v1/models').set('X-API-Key', 'sk-wrong-later'), 401, 'invalid_api_key');
  });
});

describeInProcess('key lookup cache', 'closes the in-process database', () => {
  it('an authenticated request costs no database round trip once the key is known', async () => {
    const own = await startTestApp();
    try {
      const { key } = await createKey(own);
      expect((await own.http().get('/v1/models').set('X-API-Key', key)).status).toBe(200);
      // With the database gone, only the in-memory lookup can still recognise the key.
      await own.app!.get(DataSource).destroy();
      expect((await own.http().get('/v1/models').set('X-API-Key', key)).status).toBe(200);
      // An unknown key needs the database, which is gone: 503 (it cannot be checked), never a 200.
      const unknown = await own.http().get('/v1/models').set('X-API-Key', `${key}x`);
      expect(unknown.status).toBe(503);
      expect(unknown.body.error.code).toBe('service_unavailable');
    } finally {
      await own.close().catch(() => undefined);
    }
  });
});

describeInProcess('logs', 'reads the in-process log stream', () => {
  it('never contain an API key or the admin token', async () => {
    const lines: string[] = [];
    const logged = await startTestApp({
      env: { LOG_LEVEL: 'debug' },
      logStream: { write: (line) => lines.push(line) },
    });
    try {
      const { key } = await createKey(logged);
      await logged.http().get('/v1/models').set('X-API-Key', key).expect(200);
      await logged.http().get('/v1/models').set('Authorization', `Bearer ${key}x`).expect(401);
      const requestLines = lines.filter((line) => line.includes('"msg":"request"'));
      expect(requestLines.length).toBeGreaterThanOrEqual(3);
      const all = lines.join('');
      expect(all).not.toContain(key);
      expect(all).not.toContain(TEST_ADMIN_TOKEN);
      for (const line of requestLines)
        expect(JSON.parse(line)).toMatchObject({ request_id: expect.any(String), status: expect.any(Number) });
    } finally {
      await logged.close();
    }
  });
});

describeServices('changes reach other replicas (PostgreSQL + Redis)', () => {
  let replica: TestApp;
  beforeAll(async () => {
    replica = await startTestApp({ shareWith: app });
  });
  afterAll(() => replica.close());

  async function eventually(check: () => Promise<boolean>, withinMs: number): Promise<number> {
    const started = Date.now();
    while (Date.now() - started < withinMs) {
      if (await check()) return Date.now() - started;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`not within ${withinMs} ms`);
  }

  it('revocation and rotation on one replica take effect on the other within 5 s', async () => {
    const { key, id } = await createKey(app);
    // The replica caches the key...
    expect((await replica.http().get('/v1/models').set('X-API-Key', key)).status).toBe(200);
    // ...then it is rotated on the first replica.
    await app
      .http()
      .post(`/admin/keys/${id}/rotate`)
      .set(...adminAuth())
      .expect(200);
    await eventually(async () => (await replica.http().get('/v1/models').set('X-API-Key', key)).status === 401, 5000);

    const second = await createKey(app);
    expect((await replica.http().get('/v1/models').set('X-API-Key', second.key)).status).toBe(200);
    await app
      .http()
      .delete(`/admin/keys/${second.id}`)
      .set(...adminAuth())
      .expect(204);
    await eventually(
      async () => (await replica.http().get('/v1/models').set('X-API-Key', second.key)).status === 401,
      5000,
    );
  });
});
