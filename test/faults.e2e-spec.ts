/**
 * Faults (issue "PostgreSQL, Redis and upstreams break"): with a TCP proxy the test controls
 * between the server and each dependency, made to hang or to refuse, the gateway answers within
 * its bounds, serves what it still can, says what is broken in /readyz, recovers on its own and
 * loses no usage of what it served. PostgreSQL and Redis faults run on the real services
 * (npm run test:services); upstream faults run everywhere.
 */
import { Database } from '../src/infra/database/database.service';
import { REDIS_CONNECTION, type RedisConnection } from '../src/infra/redis/redis.module';
import { ReplicaBus } from '../src/stores/replica-bus/replica-bus';
import { startTestApp, type TestApp } from './harness/app';
import { describeInProcess, describeServices, SERVICES_DATABASE_URL, SERVICES_REDIS_URL } from './harness/environment';
import { adminAuth, createKey } from './harness/keys';
import { parseExposition, sampleValue } from './harness/prometheus';
import { TcpProxy } from './harness/tcp-proxy';
import { sleep } from './fakes/fake-server';
import { FakeVllm } from './fakes/fake-vllm';

jest.setTimeout(60_000);

/** Runs `request` and returns its status with the time it took. */
async function timed(request: () => PromiseLike<{ status: number }>): Promise<{ status: number; ms: number }> {
  const started = Date.now();
  const { status } = await request();
  return { status, ms: Date.now() - started };
}

/** Polls until `check` holds (dependencies come back on their own schedule). */
async function until(check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not recovered within ${timeoutMs} ms`);
    await sleep(100);
  }
}

describeServices('Redis breaks', () => {
  let proxy: TcpProxy;
  let app: TestApp;
  let redis: RedisConnection;

  beforeAll(async () => {
    proxy = await TcpProxy.start(SERVICES_REDIS_URL!);
    app = await startTestApp({ env: { REDIS_URL: proxy.urlFor(SERVICES_REDIS_URL!) } });
    redis = app.app!.get<RedisConnection>(REDIS_CONNECTION);
  });
  afterAll(async () => {
    await app?.close();
    await proxy?.close();
  });
  afterEach(async () => {
    await proxy.setMode('pass');
    await until(() => redis.health.up);
  });

  const generate = (key: string, prompt: string) =>
    app.http().post('/v1/generate').set('X-API-Key', key).send({ prompt });

  it('hung: every generation is answered 200 within 2 s; /readyz names redis; it recovers by itself', async () => {
    const { key } = await createKey(app);
    await proxy.setMode('hang');
    for (let i = 0; i < 5; i += 1) {
      const { status, ms } = await timed(() => generate(key, `hung ${i}`));
      expect({ status, withinBound: ms < 2000 }).toEqual({ status: 200, withinBound: true });
    }
    const ready = await app.http().get('/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.error).toHaveProperty('redis');
    await proxy.setMode('pass');
    await until(async () => (await app.http().get('/readyz')).status === 200);
    await until(() => redis.health.up); // the next probe (every 500 ms) puts Redis back in use
    // Shared again: an answer stored now is a cache hit.
    expect((await generate(key, 'after the outage')).body.cached).toBe(false);
    expect((await generate(key, 'after the outage')).body.cached).toBe(true);
  });

  it('refusing connections: every generation is answered 200 within 1 s', async () => {
    const { key } = await createKey(app);
    await proxy.setMode('refuse');
    for (let i = 0; i < 5; i += 1) {
      const { status, ms } = await timed(() => generate(key, `refused ${i}`));
      expect({ status, withinBound: ms < 1000 }).toEqual({ status: 200, withinBound: true });
    }
  });

  it('the replica bus subscribes again after an outage, and key changes reach the other replica', async () => {
    const replica = await startTestApp({ shareWith: app, env: { REDIS_URL: proxy.urlFor(SERVICES_REDIS_URL!) } });
    try {
      const bus = replica.app!.get(ReplicaBus);
      await until(() => bus.live);
      await proxy.setMode('refuse');
      await until(() => !bus.live);
      await proxy.setMode('pass');
      await until(() => bus.live);
      const { key, id } = await createKey(app);
      expect((await replica.http().get('/v1/models').set('X-API-Key', key)).status).toBe(200); // cached there
      await app
        .http()
        .delete(`/admin/keys/${id}`)
        .set(...adminAuth());
      await until(async () => (await replica.http().get('/v1/models').set('X-API-Key', key)).status === 401, 2000);
    } finally {
      await replica.close();
    }
  });
});

describeServices('key changes while the replica bus is down', () => {
  it('a replica that cannot hear key changes keeps a key at most 5 s after another replica revoked it', async () => {
    const proxy = await TcpProxy.start(SERVICES_REDIS_URL!);
    const deaf = await startTestApp({ env: { REDIS_URL: proxy.urlFor(SERVICES_REDIS_URL!) } });
    const admin = await startTestApp({ shareWith: deaf });
    try {
      const { key, id } = await createKey(admin);
      const models = () => deaf.http().get('/v1/models').set('X-API-Key', key);
      expect((await models()).status).toBe(200); // now in the deaf replica's key cache
      await proxy.setMode('refuse');
      await until(() => !deaf.app!.get(ReplicaBus).live);
      expect(
        (
          await admin
            .http()
            .delete(`/admin/keys/${id}`)
            .set(...adminAuth())
        ).status,
      ).toBe(204);
      deaf.clock.advance(4000);
      expect((await models()).status).toBe(200); // not heard of it: cached, within the bound
      deaf.clock.advance(1001);
      expect((await models()).status).toBe(401); // past 5 s it asks the database again
    } finally {
      await admin.close();
      await deaf.close();
      await proxy.close();
    }
  });
});

describeServices('PostgreSQL breaks', () => {
  let proxy: TcpProxy;
  let app: TestApp;
  let db: Database;

  beforeAll(async () => {
    proxy = await TcpProxy.start(SERVICES_DATABASE_URL!);
    app = await startTestApp({ env: { DATABASE_URL: proxy.urlFor(SERVICES_DATABASE_URL!) } });
    db = app.app!.get(Database);
  });
  afterAll(async () => {
    await app?.close();
    await proxy?.close();
  });
  afterEach(async () => {
    await proxy.setMode('pass');
    await until(() => db.health.up);
  });

  const generate = (key: string, prompt: string) =>
    app.http().post('/v1/generate').set('X-API-Key', key).set('Cache-Control', 'no-store').send({ prompt });

  async function ledgerRequests(id: string): Promise<number> {
    const res = await app
      .http()
      .get(`/admin/keys/${id}/usage`)
      .set(...adminAuth());
    expect(res.status).toBe(200);
    return (res.body.data as { requests: number }[]).reduce((sum, row) => sum + row.requests, 0);
  }

  it.each([['hang' as const], ['refuse' as const]])(
    '%s: keys without a quota are served within 3 s, quota keys get 503 within 6 s, /readyz names the database; after it no 500 and no usage lost',
    async (mode) => {
      const free = await createKey(app);
      const quota = await createKey(app, { monthly_quota: 100 });
      for (const key of [free.key, quota.key]) expect((await generate(key, 'seen before')).status).toBe(200);

      await proxy.setMode(mode);
      let served = 1;
      for (let i = 0; i < 4; i += 1) {
        const { status, ms } = await timed(() => generate(free.key, `during ${i}`));
        expect({ status, withinBound: ms < 3000 }).toEqual({ status: 200, withinBound: true });
        served += 1;
      }
      const refused = await app.http().post('/v1/generate').set('X-API-Key', quota.key).send({ prompt: 'q' });
      expect(refused.status).toBe(503);
      expect(refused.body.error.code).toBe('service_unavailable');
      expect(refused.headers['retry-after']).toBeDefined();
      const { ms: quotaMs } = await timed(() => generate(quota.key, 'q again'));
      expect(quotaMs).toBeLessThan(6000);
      const ready = await timed(() => app.http().get('/readyz'));
      expect(ready.status).toBe(503);
      expect((await app.http().get('/readyz')).body.error).toHaveProperty('database');
      const admin = await app
        .http()
        .get('/admin/keys')
        .set(...adminAuth());
      expect(admin.status).toBe(503);

      await proxy.setMode('pass');
      await until(() => db.health.up);
      // The next admin call works (no 500 from a dead pooled connection), and every 200 is in the ledger.
      expect(
        (
          await app
            .http()
            .get('/admin/keys')
            .set(...adminAuth())
        ).status,
      ).toBe(200);
      await until(async () => (await ledgerRequests(free.id)) === served);
      expect((await generate(quota.key, 'after')).status).toBe(200);
    },
  );
});

describeInProcess('an upstream breaks: circuit breakers', 'uses fake upstreams', () => {
  let hung: FakeVllm;
  let healthy: FakeVllm;
  let app: TestApp;

  beforeAll(async () => {
    hung = await FakeVllm.start();
    healthy = await FakeVllm.start();
    app = await startTestApp({
      modelsYaml: `default_model: two
models:
  - name: two
    provider: vllm
    upstream_model: m
    timeout_ms: 1000
    required: true
    breaker: { failures: 2, cooldown_ms: 1500 }
    upstreams:
      - base_url: ${hung.url}
      - base_url: ${healthy.url}
`,
    });
  });
  afterAll(async () => {
    await app?.close();
    await hung?.close();
    await healthy?.close();
  });

  it('a hung upstream costs only `failures` requests, is skipped while open, probed once after the cooldown, and closes when it answers', async () => {
    const { key } = await createKey(app, { rpm_limit: 100_000 });
    hung.setMode('hang');
    const statuses: number[] = [];
    for (let i = 0; i < 12; i += 1) {
      const res = await app
        .http()
        .post('/v1/generate')
        .set('X-API-Key', key)
        .set('Cache-Control', 'no-store')
        .send({ prompt: `p${i}` });
      statuses.push(res.status);
    }
    expect(statuses.filter((status) => status === 504)).toHaveLength(2);
    expect(statuses.slice(-8)).toEqual(Array(8).fill(200));
    const metrics = parseExposition((await app.http().get('/metrics')).text);
    expect(sampleValue(metrics, 'llm_upstream_state', { model: 'two', upstream: hung.url.slice(7) })).toBe(2);
    const ready = await app.http().get('/readyz');
    expect(ready.body.details['model:two'].upstreams.map((u: { breaker: string }) => u.breaker)).toEqual([
      'open',
      'closed',
    ]);

    // After the cooldown one request probes the upstream; it answers again, so the breaker closes.
    hung.setMode('normal');
    await sleep(1600);
    const before = hung.requests.length;
    for (let i = 0; i < 4; i += 1) {
      expect(
        (
          await app
            .http()
            .post('/v1/generate')
            .set('X-API-Key', key)
            .send({ prompt: `q${i}` })
        ).status,
      ).toBe(200);
    }
    expect(hung.requests.length).toBeGreaterThan(before);
    const after = parseExposition((await app.http().get('/metrics')).text);
    expect(sampleValue(after, 'llm_upstream_state', { model: 'two', upstream: hung.url.slice(7) })).toBe(0);
  });

  it('while every upstream is skipped, requests get 503 backend_unavailable at once instead of waiting', async () => {
    const { key } = await createKey(app, { rpm_limit: 100_000 });
    hung.setMode('hang');
    healthy.setMode('hang');
    for (let i = 0; i < 4; i += 1) {
      await app
        .http()
        .post('/v1/generate')
        .set('X-API-Key', key)
        .set('Cache-Control', 'no-store')
        .send({ prompt: `x${i}` });
    }
    const { status, ms } = await timed(() =>
      app.http().post('/v1/generate').set('X-API-Key', key).set('Cache-Control', 'no-store').send({ prompt: 'fast' }),
    );
    expect(status).toBe(503);
    expect(ms).toBeLessThan(200);
  });
});
