/**
 * The round-trip budget of a request (docs/performance.md), counted on the real services: Redis
 * commands with MONITOR, database statements at the statement runner. A change that adds a round
 * trip to the hot path fails here.
 *
 * | request                               | Redis commands                      | database statements |
 * | cache miss, key without a quota       | 3: rate limit, lookup-or-claim, store-and-release (not awaited) | 0 |
 * | cache hit, key without a quota        | 2: rate limit, lookup-or-claim      | 0                   |
 * | cache miss, key with a monthly quota  | 3, as above                         | 1: the reservation (token charges go with the batched ledger write) |
 */
import Redis from 'ioredis';
import { Database } from '../src/infra/database/database.service';
import { startTestApp, type TestApp } from './harness/app';
import { describeServices, SERVICES_REDIS_URL } from './harness/environment';
import { adminAuth, createKey } from './harness/keys';
import { sleep } from './fakes/fake-server';

describeServices('round trips per request', () => {
  let app: TestApp;
  let monitor: Redis;
  const commands: string[][] = [];

  beforeAll(async () => {
    app = await startTestApp();
    monitor = await new Redis(SERVICES_REDIS_URL!).monitor();
    // Commands a script runs show as from "lua": one script is one round trip.
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (source !== 'lua' && args.some((arg) => arg.includes(app.redisPrefix))) commands.push(args);
    });
  });
  afterAll(async () => {
    monitor?.disconnect();
    await app?.close();
  });

  /** Waits until Redis has been quiet for 100 ms (bounded: 3 s). */
  async function quiet(): Promise<void> {
    for (let seen = -1, waited = 0; seen !== commands.length && waited < 3000; waited += 100) {
      seen = commands.length;
      await sleep(100);
    }
  }

  /** The Redis commands and database statements of one request, once its unawaited writes landed. */
  let tokensAnswered = 0;

  async function budget(
    send: () => Promise<{ status: number; body: { usage: { total_tokens: number } } }>,
  ): Promise<{ redis: string[]; statements: number }> {
    // The previous request's unawaited store-and-release is not this one's: let it land first.
    await quiet();
    const statements = jest.spyOn(app.app!.get(Database), 'run');
    commands.length = 0;
    const res = await send();
    expect(res.status).toBe(200);
    tokensAnswered += res.body.usage.total_tokens;
    // This request's unawaited store-and-release lands too, so a slow machine counts it and an
    // extra command still shows.
    await quiet();
    // Background writes are not the request's: the batched usage write (the ledger and the token
    // charges, within 100 ms of a charge); the counters checked at the end show nothing was lost.
    const background = ['INSERT INTO key_usage_daily'];
    const onRequestPath = statements.mock.calls.filter(
      ([sql]) => !background.some((text) => String(sql).includes(text)),
    );
    const counted = { redis: commands.map((args) => args[0].toLowerCase()), statements: onRequestPath.length };
    statements.mockRestore();
    return counted;
  }

  const generate = (key: string, prompt: string) =>
    app.http().post('/v1/generate').set('X-API-Key', key).send({ prompt });

  it('a key without a quota: a miss costs 3 Redis commands and no statement, a hit 2 and none', async () => {
    const { key } = await createKey(app);
    await generate(key, 'warm up: key cache, scripts'); // the key's first use reads it from the database
    expect(await budget(() => generate(key, 'a new question'))).toEqual({
      redis: ['evalsha', 'evalsha', 'evalsha'],
      statements: 0,
    });
    expect(await budget(() => generate(key, 'a new question'))).toEqual({
      redis: ['evalsha', 'evalsha'],
      statements: 0,
    });
  });

  it('a key with a quota: one statement per request (the reservation)', async () => {
    const { key, id } = await createKey(app, { monthly_quota: 1000, monthly_token_quota: 1_000_000 });
    tokensAnswered = (await generate(key, 'warm up')).body.usage.total_tokens;
    for (let i = 0; i < 3; i += 1) {
      expect(await budget(() => generate(key, `question ${i}`))).toEqual({
        redis: ['evalsha', 'evalsha', 'evalsha'],
        statements: 1,
      });
    }
    // Nothing was lost: the counters hold every unit and token.
    const view = await app
      .http()
      .get(`/admin/keys/${id}`)
      .set(...adminAuth());
    expect(view.body.usage).toEqual(expect.objectContaining({ requests: 4, tokens: tokensAnswered }));
  });
});
