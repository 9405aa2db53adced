/**
 * The low-level helpers of rate limits and quotas (the seed's test_limits): window math,
 * period and reset computation, the quota headers, the cut-stream estimate, the rate-limit
 * store (in-process and its Lua scripts against real Redis), the quota statements against
 * PGlite and PostgreSQL, and the usage ledger writer's batching.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { DataSource } from 'typeorm';
import type { AppConfig } from '../src/infra/config/app.config';
import { dataSourceOptions } from '../src/infra/database/data-source';
import { runMigrations } from '../src/infra/database/migrate';
import { createLogger } from '../src/infra/logging/logger';
import { monthStartUtc, nextMonthStartUtc, quotaPeriodAt } from '../src/modules/limits/quota-period';
import type { AppError } from '../src/contracts/app-error';
import { limitHeaders, quotaHeaders } from '../src/http/core/limit-headers';
import type { LimitRejections } from '../src/modules/limits/limit-rejections';
import { type QuotaReservation, QuotaService } from '../src/modules/limits/quota.service';
import { QuotaTokenCharges } from '../src/modules/limits/quota-token-charges';
import { RATE_LIMIT_WINDOW_MS, secondsUntil, windowAt, windowKeys } from '../src/stores/rate-limit/rate-limit-window';
import { MemoryRateLimitCounters } from '../src/stores/rate-limit/memory-rate-limit-counters';
import type { RateLimitCounters } from '../src/stores/rate-limit/rate-limit-counters';
import { rateLimitCounters } from '../src/stores/stores.module';
import { LimitRejections as Rejections } from '../src/modules/limits/limit-rejections';
import { LlmMetricsService } from '../src/infra/metrics/llm-metrics.service';
import { createMetricsRegistry } from '../src/infra/metrics/metrics.registry';
import { METRICS } from '../src/infra/metrics/metric-names';
import { NoopTracing } from '../src/infra/tracing/tracing';
import { modelConfig } from './fakes/model-config';
import { RedisConnection } from '../src/infra/redis/redis.module';
import { Database } from '../src/infra/database/database.service';
import { DatabaseRejected } from '../src/infra/database/database-errors';
import { cutStreamUsage } from '../src/modules/usage/usage-estimate';
import { UsageLedgerWriter } from '../src/modules/usage/usage-ledger.writer';
import { closedPortUrl } from './fakes/fake-server';
import { dropSchema } from './harness/app';
import { describeServices, SERVICES_DATABASE_URL, SERVICES_REDIS_URL } from './harness/environment';
import { FakeClock } from './harness/fake-clock';

const silent = createLogger('silent');

describe('fixed window math', () => {
  it('aligns windows to the clock: window n covers [n*w, (n+1)*w)', () => {
    expect(windowAt(0, 60_000)).toEqual({ index: 0, resetInMs: 60_000 });
    expect(windowAt(59_999, 60_000)).toEqual({ index: 0, resetInMs: 1 });
    expect(windowAt(60_000, 60_000)).toEqual({ index: 1, resetInMs: 60_000 });
    const at = Date.parse('2026-11-24T12:00:42.250Z');
    expect(windowAt(at, RATE_LIMIT_WINDOW_MS)).toEqual({ index: Math.floor(at / 60_000), resetInMs: 17_750 });
  });

  it('rounds seconds up and never below 1, so a client never retries early', () => {
    expect(secondsUntil(60_000)).toBe(60);
    expect(secondsUntil(17_750)).toBe(18);
    expect(secondsUntil(1)).toBe(1);
    expect(secondsUntil(0)).toBe(1);
  });

  it('names both keys of a window under the prefix, with one hash tag per tracker', () => {
    expect(windowKeys('p:', 'key-1', 7)).toEqual({
      requests: 'p:rate-limit:{key-1}:7:requests',
      tokens: 'p:rate-limit:{key-1}:7:tokens',
    });
  });
});

describe('quota periods (calendar months in UTC)', () => {
  it('starts at the first instant of the month and resets at the first instant of the next', () => {
    expect(quotaPeriodAt(new Date('2026-11-24T12:00:00Z'))).toEqual({
      start: new Date('2026-11-01T00:00:00.000Z'),
      resetAt: new Date('2026-12-01T00:00:00.000Z'),
    });
  });

  it('rolls over the year and handles month ends and leap years', () => {
    expect(nextMonthStartUtc(new Date('2026-12-31T23:59:59.999Z'))).toEqual(new Date('2027-01-01T00:00:00.000Z'));
    expect(nextMonthStartUtc(new Date('2028-02-29T10:00:00Z'))).toEqual(new Date('2028-03-01T00:00:00.000Z'));
    expect(monthStartUtc(new Date('2027-01-31T23:00:00Z'))).toEqual(new Date('2027-01-01T00:00:00.000Z'));
  });

  it('uses UTC, not the local zone: the reset instant itself belongs to the next period', () => {
    const reset = new Date('2026-12-01T00:00:00.000Z');
    expect(quotaPeriodAt(reset).start).toEqual(reset);
    expect(quotaPeriodAt(new Date(reset.getTime() - 1)).resetAt).toEqual(reset);
  });
});

describe('quota headers', () => {
  const base: QuotaReservation = {
    keyId: 'k',
    resetAt: new Date('2026-12-01T00:00:00.000Z'),
    requestQuota: null,
    tokenQuota: null,
    requestsUsed: 3,
    tokensUsed: 120,
  };

  it('none without a quota', () => {
    expect(quotaHeaders(base)).toEqual({});
  });

  it('request quota: limit, remaining after this request, reset as ISO 8601', () => {
    expect(quotaHeaders({ ...base, requestQuota: 5 })).toEqual({
      'X-Quota-Limit': '5',
      'X-Quota-Remaining': '2',
      'X-Quota-Reset': '2026-12-01T00:00:00.000Z',
    });
  });

  it('token quota alone fills X-Quota-Limit/Remaining too, plus the token headers; never negative', () => {
    expect(quotaHeaders({ ...base, tokenQuota: 100 })).toEqual({
      'X-Quota-Limit': '100',
      'X-Quota-Remaining': '0',
      'X-Quota-Tokens-Limit': '100',
      'X-Quota-Tokens-Remaining': '0',
      'X-Quota-Reset': '2026-12-01T00:00:00.000Z',
    });
    expect(quotaHeaders({ ...base, requestQuota: 10, tokenQuota: 1000 })).toMatchObject({
      'X-Quota-Limit': '10',
      'X-Quota-Remaining': '7',
      'X-Quota-Tokens-Remaining': '880',
    });
  });
});

describe('cut-stream usage estimate', () => {
  it('charges one token per delta received, at most max_new_tokens, and the prompt’s words', () => {
    expect(cutStreamUsage('tell me  a\nstory', 3, 16)).toEqual({ promptTokens: 4, completionTokens: 3 });
    expect(cutStreamUsage('x', 40, 16)).toEqual({ promptTokens: 1, completionTokens: 16 });
    expect(cutStreamUsage('   ', 0, 16)).toEqual({ promptTokens: 0, completionTokens: 0 });
  });
});

describe('LimitRejections', () => {
  it('counts each refusal in the metrics by reason and quota type', async () => {
    const registry = createMetricsRegistry();
    const config = { models: { defaultModel: 'a', models: [modelConfig({ name: 'a' })] } } as unknown as AppConfig;
    const rejections = new Rejections(new LlmMetricsService(registry, config), new NoopTracing());
    rejections.rateLimited('rpm');
    rejections.rateLimited('rpm');
    rejections.quotaExhausted('tokens');
    const text = await registry.metrics();
    expect(text).toContain(`${METRICS.rateLimitRejections.name}{reason="rpm"} 2`);
    expect(text).toContain(`${METRICS.rateLimitRejections.name}{reason="tpm"} 0`);
    expect(text).toContain(`${METRICS.quotaRejections.name}{type="tokens"} 1`);
  });
});

function storeWith(
  redis: Redis | null,
  clock: FakeClock,
  prefix = `limits-${randomBytes(4).toString('hex')}:`,
): RateLimitCounters {
  return redis
    ? rateLimitCounters(new RedisConnection(redis, prefix, silent), clock)
    : new MemoryRateLimitCounters(clock);
}

/** The store's contract, the same in-process and in Redis. */
function storeContract(makeStore: (clock: FakeClock) => RateLimitCounters): void {
  it('counts hits per tracker in the current window and reports the time left', async () => {
    const clock = new FakeClock(new Date('2026-11-24T12:00:15.000Z'));
    const store = makeStore(clock);
    expect(await store.hit('a', 60_000)).toEqual({ count: 1, tokens: 0, resetInMs: 45_000 });
    expect((await store.hit('a', 60_000)).count).toBe(2);
    expect((await store.hit('b', 60_000)).count).toBe(1);
  });

  it('starts from zero in the next window (the clock decides, not a timer)', async () => {
    const clock = new FakeClock(new Date('2026-11-24T12:00:59.000Z'));
    const store = makeStore(clock);
    await store.hit('a', 60_000);
    await store.chargeTokens('a', 60_000, 50);
    expect(await store.hit('a', 60_000)).toMatchObject({ count: 2, tokens: 50 });
    clock.advance(1000);
    expect(await store.hit('a', 60_000)).toEqual({ count: 1, tokens: 0, resetInMs: 60_000 });
  });

  it('adds charged tokens to the window (TPM), ignoring zero', async () => {
    const clock = new FakeClock();
    const store = makeStore(clock);
    await store.chargeTokens('a', 60_000, 30);
    await store.chargeTokens('a', 60_000, 0);
    await store.chargeTokens('a', 60_000, 12);
    expect((await store.hit('a', 60_000)).tokens).toBe(42);
    expect((await store.hit('b', 60_000)).tokens).toBe(0);
  });

  it('implements ThrottlerStorage.increment: blocked above the limit until the window ends', async () => {
    const clock = new FakeClock(new Date('2026-11-24T12:00:30.000Z'));
    const store = makeStore(clock);
    expect(await store.increment('t', 60_000, 2, 60_000, 'rpm')).toEqual({
      totalHits: 1,
      timeToExpire: 30,
      isBlocked: false,
      timeToBlockExpire: 0,
    });
    await store.increment('t', 60_000, 2, 60_000, 'rpm');
    expect(await store.increment('t', 60_000, 2, 60_000, 'rpm')).toEqual({
      totalHits: 3,
      timeToExpire: 30,
      isBlocked: true,
      timeToBlockExpire: 30,
    });
  });

  it('counts concurrent hits exactly: every count from 1 to N once', async () => {
    const store = makeStore(new FakeClock());
    const hits = await Promise.all(Array.from({ length: 200 }, () => store.hit('hot', 60_000)));
    expect(hits.map((hit) => hit.count).sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
  });
}

describe('rate-limit counters in-process', () => {
  storeContract((clock) => storeWith(null, clock));

  it('the Redis counters fall back to counting in this process when Redis fails', async () => {
    const url = new URL(await closedPortUrl());
    const broken = new Redis({
      host: url.hostname,
      port: Number(url.port),
      lazyConnect: true,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    try {
      const store = storeWith(broken, new FakeClock());
      expect((await store.hit('a', 60_000)).count).toBe(1);
      expect((await store.hit('a', 60_000)).count).toBe(2);
    } finally {
      broken.disconnect();
    }
  });
});

describeServices('rate-limit counters on Redis (Lua scripts)', () => {
  const clients: Redis[] = [];
  const client = (): Redis => {
    const redis = new Redis(SERVICES_REDIS_URL!);
    clients.push(redis);
    return redis;
  };
  afterAll(() => Promise.all(clients.map((redis) => redis.quit())));

  storeContract((clock) => storeWith(client(), clock));

  it('two stores on separate connections sharing the prefix share the window (replicas)', async () => {
    const clock = new FakeClock();
    const prefix = `limits-${randomBytes(4).toString('hex')}:`;
    const [a, b] = [storeWith(client(), clock, prefix), storeWith(client(), clock, prefix)];
    const hits = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).hit('shared', 60_000)));
    expect(Math.max(...hits.map((hit) => hit.count))).toBe(100);
    await a.chargeTokens('shared', 60_000, 7);
    expect((await b.hit('shared', 60_000)).tokens).toBe(7);
  });

  it('gives window keys a lifetime, and reloads its script after SCRIPT FLUSH', async () => {
    const redis = client();
    const clock = new FakeClock();
    const prefix = `limits-${randomBytes(4).toString('hex')}:`;
    const store = storeWith(redis, clock, prefix);
    await store.hit('ttl', 60_000);
    const keys = windowKeys(prefix, 'ttl', windowAt(clock.now().getTime(), 60_000).index);
    const ttl = await redis.pttl(keys.requests);
    expect(ttl).toBeGreaterThan(60_000);
    expect(ttl).toBeLessThanOrEqual(120_000);
    await redis.script('FLUSH');
    expect((await store.hit('ttl', 60_000)).count).toBe(2);
  });
});

/** Quota statements against a real database: PGlite always, PostgreSQL with test:services. */
function quotaContract(open: () => Promise<{ db: DataSource; close: () => Promise<void> }>): void {
  let db: DataSource;
  let close: () => Promise<void>;
  const clock = new FakeClock();
  // The refusals the quota reports, as LimitRejections would record them.
  const seen: { kind: 'quota_rejected'; type: string }[] = [];
  const rejections = {
    quotaExhausted: (type: string) => seen.push({ kind: 'quota_rejected', type }),
  } as unknown as LimitRejections;
  let quota: QuotaService;

  beforeAll(async () => {
    ({ db, close } = await open());
    const database = databaseOf(db);
    quota = new QuotaService(database, clock, rejections, new QuotaTokenCharges(database, silent));
  }, 30_000);
  afterAll(() => close());
  beforeEach(() => {
    clock.set('2026-11-24T12:00:00.000Z');
    seen.length = 0;
  });

  async function insertKey(
    fields: {
      monthlyQuota?: number | null;
      monthlyTokenQuota?: number | null;
      used?: number;
      tokens?: number;
      resetAt?: string;
    } = {},
  ): Promise<string> {
    const id = randomUUID();
    const now = clock.now();
    const period = quotaPeriodAt(now);
    await db.query(
      `INSERT INTO api_keys (id, name, key_prefix, key_hash, monthly_quota, monthly_token_quota, created_at, updated_at,
                             quota_period_start, quota_reset_at, quota_requests_used, quota_tokens_used)
       VALUES ($1, 'k', 'sk-test', $2, $3, $4, $5, $5, $6, $7, $8, $9)`,
      [
        id,
        randomBytes(32).toString('hex'),
        fields.monthlyQuota ?? null,
        fields.monthlyTokenQuota ?? null,
        now.toISOString(),
        period.start.toISOString(),
        fields.resetAt ?? period.resetAt.toISOString(),
        fields.used ?? 0,
        fields.tokens ?? 0,
      ],
    );
    return id;
  }

  async function counters(id: string): Promise<{ requests: number; tokens: number; resetAt: string; start: string }> {
    const [row] = await db.query(
      `SELECT quota_requests_used, quota_tokens_used, quota_reset_at, quota_period_start FROM api_keys WHERE id = $1`,
      [id],
    );
    return {
      requests: Number(row.quota_requests_used),
      tokens: Number(row.quota_tokens_used),
      resetAt: new Date(row.quota_reset_at).toISOString(),
      start: new Date(row.quota_period_start).toISOString(),
    };
  }

  it('reserves while under the request quota, then refuses with 402 naming the reset time', async () => {
    const id = await insertKey({ monthlyQuota: 2 });
    expect((await quota.reserve(id)).requestsUsed).toBe(1);
    expect((await quota.reserve(id)).requestsUsed).toBe(2);
    const refused = (await quota.reserve(id).catch((error: unknown) => error)) as AppError;
    expect(refused).toMatchObject({
      code: 'quota_exhausted',
      message: expect.stringContaining('2026-12-01T00:00:00.000Z'),
    });
    expect(limitHeaders(refused.figures)).toMatchObject({ 'X-Quota-Limit': '2', 'X-Quota-Remaining': '0' });
    expect((await counters(id)).requests).toBe(2);
    expect(seen).toEqual([{ kind: 'quota_rejected', type: 'requests' }]);
  });

  it('a key without quotas always reserves (usage is still counted)', async () => {
    const id = await insertKey();
    for (let i = 0; i < 3; i += 1) await quota.reserve(id);
    expect((await counters(id)).requests).toBe(3);
  });

  it('release gives the unit back; token charges add up', async () => {
    const id = await insertKey({ monthlyQuota: 1 });
    const reservation = await quota.reserve(id);
    await quota.release(reservation);
    const again = await quota.reserve(id);
    quota.chargeTokens(again, 17);
    quota.chargeTokens(again, 0);
    quota.chargeTokens(again, 3);
    await quota.flushCharges();
    expect(await counters(id)).toMatchObject({ requests: 1, tokens: 20 });
  });

  it('token charges are summed per key and written by themselves within 100 ms when no reservation carries them', async () => {
    const id = await insertKey({ monthlyTokenQuota: 1000 });
    const reservation = await quota.reserve(id);
    for (let i = 0; i < 5; i += 1) quota.chargeTokens(reservation, 10);
    expect((await counters(id)).tokens).toBe(0);
    // Within 100 ms on a quiet machine; a loaded one may run the timer late (bounded wait).
    for (const started = Date.now(); (await counters(id)).tokens === 0 && Date.now() - started < 2000;) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect((await counters(id)).tokens).toBe(50);
  });

  it('the next reservation of the key carries its pending charges in the same statement, and checks them', async () => {
    const id = await insertKey({ monthlyTokenQuota: 100 });
    const first = await quota.reserve(id);
    quota.chargeTokens(first, 60);
    const second = await quota.reserve(id); // carries the 60
    expect(second.tokensUsed).toBe(60);
    expect(await counters(id)).toMatchObject({ requests: 2, tokens: 60 });
    quota.chargeTokens(second, 50);
    // 60 + 50 pending: over the token quota, so the next reservation is refused, and the charge
    // it could not carry is still written.
    await expect(quota.reserve(id)).rejects.toMatchObject({ code: 'quota_exhausted' });
    await quota.flushCharges();
    expect(await counters(id)).toMatchObject({ requests: 2, tokens: 110 });
  });

  it('the token quota refuses once used up (type tokens), whatever the request quota', async () => {
    const id = await insertKey({ monthlyQuota: 100, monthlyTokenQuota: 50, tokens: 50 });
    await expect(quota.reserve(id)).rejects.toMatchObject({
      code: 'quota_exhausted',
      message: expect.stringContaining('token quota of 50'),
    });
    expect(seen).toEqual([{ kind: 'quota_rejected', type: 'tokens' }]);
  });

  it('a request at or after quota_reset_at starts a new period with zero usage, in the same statement', async () => {
    const id = await insertKey({ monthlyQuota: 2, used: 2, tokens: 900 });
    await expect(quota.reserve(id)).rejects.toMatchObject({ code: 'quota_exhausted' });
    clock.set('2026-12-01T00:00:00.000Z');
    const reservation = await quota.reserve(id);
    expect(reservation).toMatchObject({
      requestsUsed: 1,
      tokensUsed: 0,
      resetAt: new Date('2027-01-01T00:00:00.000Z'),
    });
    expect(await counters(id)).toEqual({
      requests: 1,
      tokens: 0,
      resetAt: '2027-01-01T00:00:00.000Z',
      start: '2026-12-01T00:00:00.000Z',
    });
  });

  it('a period that passed unseen for months restarts at the current month', async () => {
    const id = await insertKey({ monthlyQuota: 5, used: 5 });
    clock.set('2027-03-15T08:00:00.000Z');
    await quota.reserve(id);
    expect(await counters(id)).toMatchObject({
      requests: 1,
      resetAt: '2027-04-01T00:00:00.000Z',
      start: '2027-03-01T00:00:00.000Z',
    });
  });

  it('a quota of 0 refuses also across a rollover, and the 402 names the new period’s reset', async () => {
    const id = await insertKey({ monthlyQuota: 0 });
    clock.set('2026-12-05T00:00:00.000Z');
    await expect(quota.reserve(id)).rejects.toMatchObject({
      message: expect.stringContaining('2027-01-01T00:00:00.000Z'),
    });
  });

  it('release and token charges never touch a later period', async () => {
    const id = await insertKey({ monthlyQuota: 10 });
    const old = await quota.reserve(id);
    clock.set('2026-12-01T00:00:01.000Z');
    await quota.reserve(id);
    await quota.release(old);
    quota.chargeTokens(old, 500);
    await quota.flushCharges();
    expect(await counters(id)).toMatchObject({ requests: 1, tokens: 0 });
  });

  it('200 concurrent reservations on a quota of 50: exactly 50 succeed', async () => {
    const id = await insertKey({ monthlyQuota: 50 });
    const results = await Promise.allSettled(Array.from({ length: 200 }, () => quota.reserve(id)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(50);
    expect(
      results.filter((r) => r.status === 'rejected' && (r.reason as { code: string }).code === 'quota_exhausted'),
    ).toHaveLength(150);
    expect((await counters(id)).requests).toBe(50);
  }, 30_000);

  it('concurrent first requests of a new period roll it over once', async () => {
    const id = await insertKey({ monthlyQuota: 20, used: 20, tokens: 5 });
    clock.set('2026-12-01T00:00:00.000Z');
    const results = await Promise.allSettled(Array.from({ length: 40 }, () => quota.reserve(id)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(20);
    expect(await counters(id)).toEqual({
      requests: 20,
      tokens: 0,
      resetAt: '2027-01-01T00:00:00.000Z',
      start: '2026-12-01T00:00:00.000Z',
    });
  }, 30_000);
}

function databaseOf(dataSource: DataSource): Database {
  return new Database(dataSource, { dbTimeoutMs: 5000 } as AppConfig, silent);
}

describe('QuotaService statements on PGlite', () => {
  quotaContract(async () => {
    const db = await new DataSource(dataSourceOptions({ kind: 'pglite', dataDir: null })).initialize();
    await runMigrations(db);
    return { db, close: () => db.destroy() };
  });
});

describeServices('QuotaService statements on PostgreSQL', () => {
  quotaContract(async () => {
    const url = SERVICES_DATABASE_URL!;
    const schema = `test_limits_${randomBytes(4).toString('hex')}`;
    const admin = await new DataSource({ type: 'postgres', url }).initialize();
    await admin.query(`CREATE SCHEMA "${schema}"`);
    await admin.destroy();
    const db = await new DataSource(dataSourceOptions({ kind: 'postgres', url, schema })).initialize();
    await runMigrations(db);
    return {
      db,
      close: async () => {
        await db.destroy();
        await dropSchema(url, schema);
      },
    };
  });
});

describe('UsageLedgerWriter', () => {
  /** A database double: fails the first `failures` calls (down), rejects batches holding `poisoned` as bad input. */
  function fakeDb(failures = 0, poisoned: string | null = null) {
    const queries: { sql: string; params: unknown[] }[] = [];
    let toFail = failures;
    const db = {
      query: async (sql: string, params: unknown[]) => {
        if (toFail > 0) {
          toFail -= 1;
          throw new Error('database down');
        }
        if (poisoned !== null && params.includes(poisoned)) throw new DatabaseRejected();
        queries.push({ sql, params });
        return { rows: [], rowCount: 0 };
      },
    } as unknown as Database;
    return { db, queries };
  }
  const at = new Date('2026-11-24T23:59:59.000Z');
  const entry = { keyId: 'k1', model: 'mock-a', at, cached: false, promptTokens: 3, completionTokens: 5 };

  it('sums per key, UTC day and model and writes them in one upsert', async () => {
    const { db, queries } = fakeDb();
    const writer = new UsageLedgerWriter(db, silent);
    writer.record(entry);
    writer.record({ ...entry, cached: true, promptTokens: 0, completionTokens: 0 });
    writer.record({ ...entry, model: 'mock-b' });
    writer.record({ ...entry, at: new Date('2026-11-25T00:00:00.000Z') });
    await writer.flush();
    expect(queries).toHaveLength(1);
    expect(queries[0].sql).toMatch(/ON CONFLICT \(key_id, day, model\) DO UPDATE/);
    expect(queries[0].params).toEqual([
      ...['k1', '2026-11-24', 'mock-a', 2, 1, 3, 5],
      ...['k1', '2026-11-24', 'mock-b', 1, 0, 3, 5],
      ...['k1', '2026-11-25', 'mock-a', 1, 0, 3, 5],
    ]);
    await writer.flush();
    expect(queries).toHaveLength(1); // nothing new, no write
  });

  it('keeps a failed batch and writes it, merged with newer sums, on the next flush', async () => {
    const { db, queries } = fakeDb(1);
    const writer = new UsageLedgerWriter(db, silent);
    writer.record(entry);
    await writer.flush();
    writer.record(entry);
    await writer.flush();
    expect(queries).toHaveLength(1);
    expect(queries[0].params).toEqual(['k1', '2026-11-24', 'mock-a', 2, 0, 6, 10]);
  });

  it('one row the database rejects is quarantined (logged with its figures); every other row is written', async () => {
    const { db, queries } = fakeDb(0, 'poisoned-key');
    const lines: string[] = [];
    const writer = new UsageLedgerWriter(db, createLogger('info', { write: (line: string) => lines.push(line) }));
    for (let i = 0; i < 7; i += 1) writer.record({ ...entry, keyId: `key-${i}` });
    writer.record({ ...entry, keyId: 'poisoned-key' });
    await writer.flush();
    const written = queries.flatMap((q) => q.params.filter((_, i) => i % 7 === 0));
    expect(written.sort()).toEqual(Array.from({ length: 7 }, (_, i) => `key-${i}`));
    expect(writer.pendingRows).toBe(0);
    const quarantine = lines.map((line) => JSON.parse(line)).find((line) => /quarantined/.test(line.msg));
    expect(quarantine.row).toMatchObject({ keyId: 'poisoned-key', requests: 1, promptTokens: 3, completionTokens: 5 });
  });

  it('writes what is pending at shutdown, retrying a failing database within the shutdown budget', async () => {
    const { db, queries } = fakeDb(3);
    const writer = new UsageLedgerWriter(db, silent);
    writer.onModuleInit();
    writer.record(entry);
    await writer.onApplicationShutdown();
    expect(queries).toHaveLength(1);
    expect(writer.pendingRows).toBe(0);
  });
});
