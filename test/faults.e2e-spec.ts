/**
 * Faults (issue "PostgreSQL, Redis and upstreams break"): with a TCP proxy the test controls
 * between the server and each dependency, made to hang or to refuse, the gateway answers within
 * its bounds, serves what it still can, says what is broken in /readyz, recovers on its own and
 * loses no usage of what it served. PostgreSQL and Redis faults run on the real services
 * (npm run test:services); upstream faults run everywhere.
 */
import { Client } from 'pg';
import { Database } from '../src/infra/database/database.service';
import { REDIS_CONNECTION, type RedisConnection } from '../src/infra/redis/redis.module';
import { KeyInvalidation } from '../src/modules/auth/key-invalidation';
import { ReplicaBus } from '../src/stores/replica-bus/replica-bus';
import { startTestApp, type TestApp, withDatabase } from './harness/app';
import {
  describeInProcess,
  describeServices,
  SERVICES_DATABASE_URL,
  SERVICES_MIGRATION_URL,
  SERVICES_REDIS_URL,
} from './harness/environment';
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

describeServices('key changes under a partition (PostgreSQL and Redis both cut from one replica)', () => {
  let dbProxy: TcpProxy;
  let redisProxy: TcpProxy;
  let cutOff: TestApp;
  let admin: TestApp;

  beforeAll(async () => {
    dbProxy = await TcpProxy.start(SERVICES_DATABASE_URL!);
    redisProxy = await TcpProxy.start(SERVICES_REDIS_URL!);
    cutOff = await startTestApp({
      env: { DATABASE_URL: dbProxy.urlFor(SERVICES_DATABASE_URL!), REDIS_URL: redisProxy.urlFor(SERVICES_REDIS_URL!) },
    });
    // The same Redis as the cut-off replica's (not the suite's cluster under test:scale).
    admin = await startTestApp({ shareWith: cutOff, env: { REDIS_URL: SERVICES_REDIS_URL! } });
  });
  afterAll(async () => {
    await admin?.close();
    await cutOff?.close();
    await redisProxy?.close();
    await dbProxy?.close();
  });
  afterEach(async () => {
    await dbProxy.setMode('pass');
    await redisProxy.setMode('pass');
    await until(() => cutOff.app!.get(Database).health.up && cutOff.app!.get(KeyInvalidation).current);
  });

  const models = (key: string) => cutOff.http().get('/v1/models').set('X-API-Key', key);

  it('a Redis blip during a PostgreSQL outage keeps unchanged keys working, and a key revoked meanwhile is not served from memory', async () => {
    const unchanged = await createKey(admin);
    const revoked = await createKey(admin);
    for (const { key } of [unchanged, revoked]) expect((await models(key)).status).toBe(200); // cached there

    await dbProxy.setMode('refuse');
    cutOff.clock.advance(61_000); // past the 60 s a cached key is trusted while the bus is live
    // The database cannot be asked; the key cache hears every change, so it stands in.
    for (const { key } of [unchanged, revoked]) expect((await models(key)).status).toBe(200);
    expect(cutOff.app!.get(Database).health.up).toBe(false);
    await redisProxy.setMode('refuse');
    await until(() => !cutOff.app!.get(ReplicaBus).live);
    const deleted = await admin
      .http()
      .delete(`/admin/keys/${revoked.id}`)
      .set(...adminAuth());
    expect(deleted.status).toBe(204); // announced while the cut-off replica could not hear it
    cutOff.clock.advance(6000); // past the 5 s bound: only the fallback could serve these keys now
    // Cut off from both, the replica cannot know which keys changed: none is served from memory.
    for (const { key } of [unchanged, revoked]) expect((await models(key)).status).toBe(503);

    await redisProxy.setMode('pass');
    await until(() => cutOff.app!.get(KeyInvalidation).current);
    expect((await models(unchanged.key)).status).toBe(200); // read what it missed: this one did not change
    const refused = await models(revoked.key);
    expect(refused.status).toBe(503); // changed meanwhile: never the fallback, and the database cannot say
    await dbProxy.setMode('pass');
    await until(() => cutOff.app!.get(Database).health.up);
    expect((await models(revoked.key)).status).toBe(401);
  });

  it('a Redis blip alone never stops keys that were not changed', async () => {
    const { key } = await createKey(admin);
    expect((await models(key)).status).toBe(200);
    await redisProxy.setMode('refuse');
    await until(() => !cutOff.app!.get(ReplicaBus).live);
    for (let i = 0; i < 3; i += 1) {
      cutOff.clock.advance(6000);
      expect((await models(key)).status).toBe(200);
    }
    await redisProxy.setMode('pass');
    await until(() => cutOff.app!.get(KeyInvalidation).current);
    expect((await models(key)).status).toBe(200);
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

describeServices('readiness and the request path agree', () => {
  let proxy: TcpProxy;
  let app: TestApp;

  beforeAll(async () => {
    proxy = await TcpProxy.start(SERVICES_DATABASE_URL!);
    app = await startTestApp({ env: { DATABASE_URL: proxy.urlFor(SERVICES_DATABASE_URL!) } });
  });
  afterAll(async () => {
    await app?.close();
    await proxy?.close();
  });

  const adminCall = () =>
    app
      .http()
      .get('/admin/keys')
      .set(...adminAuth());

  it('while the database is down for requests /readyz is 503 naming it; once /readyz is 200, requests are served at once', async () => {
    expect((await adminCall()).status).toBe(200);
    await proxy.setMode('refuse');
    expect((await adminCall()).status).toBe(503); // the request path finds it down
    const down = await app.http().get('/readyz');
    expect(down.status).toBe(503);
    expect(down.body.error).toHaveProperty('database');
    await proxy.setMode('pass');
    const ready = await app.http().get('/readyz');
    expect(ready.status).toBe(200);
    // No waiting for the next background probe: what /readyz found, requests get.
    expect((await adminCall()).status).toBe(200);
  });
});

describeServices("one slow statement is that statement's failure", () => {
  it('a quota key stuck on a row lock gets 503 while other keys and admin calls are served', async () => {
    // 1.5 s: the other key's statements must not time out on a loaded CI machine.
    const app = await startTestApp({ env: { DB_TIMEOUT_MS: '1500' } });
    // Through PgBouncer (test:scale) the app has a database of its own, not a schema.
    const locker = new Client({
      connectionString: app.database ? withDatabase(SERVICES_MIGRATION_URL!, app.database) : SERVICES_DATABASE_URL!,
    });
    await locker.connect();
    try {
      const hot = await createKey(app, { monthly_quota: 100 });
      const other = await createKey(app, { monthly_quota: 100 });
      const send = (key: string) =>
        app.http().post('/v1/generate').set('X-API-Key', key).set('Cache-Control', 'no-store').send({ prompt: 'p' });
      expect((await send(hot.key)).status).toBe(200);
      if (app.schema) await locker.query(`SET search_path TO "${app.schema}"`);
      await locker.query('BEGIN');
      await locker.query('SELECT id FROM api_keys WHERE id = $1 FOR UPDATE', [hot.id]);
      for (let i = 0; i < 4; i += 1) {
        const { status, ms } = await timed(() => send(hot.key));
        expect({ status, withinBound: ms < 3000 }).toEqual({ status: 503, withinBound: true });
        // Meanwhile the database serves every other key: it does not count as down.
        const served = await send(other.key);
        expect({ status: served.status, body: served.body }).toMatchObject({ status: 200 });
      }
      await locker.query('ROLLBACK');
      expect(app.app!.get(Database).health.up).toBe(true);
      expect(
        (
          await app
            .http()
            .get('/admin/keys')
            .set(...adminAuth())
        ).status,
      ).toBe(200);
      // PostgreSQL cancelled the waiting reservations (statement_timeout): none of them used a unit.
      const view = await app
        .http()
        .get(`/admin/keys/${hot.id}`)
        .set(...adminAuth());
      expect(view.body.usage.requests).toBe(1);
    } finally {
      await locker.end();
      await app.close();
    }
  });
});

describeServices('a timeout whose statement committed (the reply lost): counted once', () => {
  let proxy: TcpProxy;
  let app: TestApp;

  beforeAll(async () => {
    proxy = await TcpProxy.start(SERVICES_DATABASE_URL!);
    app = await startTestApp({ env: { DATABASE_URL: proxy.urlFor(SERVICES_DATABASE_URL!), DB_TIMEOUT_MS: '500' } });
  });
  afterAll(async () => {
    await app?.close();
    await proxy?.close();
  });
  afterEach(async () => {
    await proxy.setMode('pass');
    await until(() => app.app!.get(Database).health.up);
  });
  /** Connections opened while replies were late may have timed out: the database is back once a probe answers. */
  const back = () => until(() => app.app!.get(Database).health.up);

  const generate = (key: string) =>
    app.http().post('/v1/generate').set('X-API-Key', key).set('Cache-Control', 'no-store').send({ prompt: 'p' });
  /** The key's period usage, once the database answers (connections opened while replies were late may fail first). */
  const requestsUsed = async (id: string): Promise<number | null> => {
    const res = await app
      .http()
      .get(`/admin/keys/${id}`)
      .set(...adminAuth());
    return res.status === 200 ? (res.body.usage.requests as number) : null;
  };
  const ledgerRequests = async (id: string): Promise<number | null> => {
    const res = await app
      .http()
      .get(`/admin/keys/${id}/usage`)
      .set(...adminAuth());
    return res.status === 200
      ? (res.body.data as { requests: number }[]).reduce((sum, row) => sum + row.requests, 0)
      : null;
  };

  it('a reservation that committed while its caller timed out answers 503 and its unit is given back', async () => {
    const { key, id } = await createKey(app, { monthly_quota: 100 });
    expect((await generate(key)).status).toBe(200);
    await proxy.setMode('late-replies', 1500);
    const lost = await generate(key);
    expect(lost.status).toBe(503);
    expect(lost.body.error.code).toBe('service_unavailable');
    await proxy.setMode('pass');
    await back();
    // The reservation ran and committed: once it cannot be running any more, it is given back.
    await until(async () => (await requestsUsed(id)) === 1, 10_000);
    await sleep(2000);
    await until(async () => (await requestsUsed(id)) !== null);
    expect(await requestsUsed(id)).toBe(1); // and only once
  });

  it('a ledger batch whose write timed out after committing is written once, not merged back and counted twice', async () => {
    const { key, id } = await createKey(app);
    let served = 0;
    for (let i = 0; i < 3; i += 1) if ((await generate(key)).status === 200) served += 1;
    expect(served).toBe(3);
    await proxy.setMode('late-replies', 1500);
    await sleep(1600); // at least one flush of the batch ran (and committed) while its reply was late
    await proxy.setMode('pass');
    await back();
    await until(async () => ((await ledgerRequests(id)) ?? 0) >= served, 10_000);
    await sleep(1500); // the retries that follow find it written
    await until(async () => (await ledgerRequests(id)) !== null);
    expect(await ledgerRequests(id)).toBe(served);
  });
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
