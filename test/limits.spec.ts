/**
 * The low-level helpers of rate limits and quotas (the seed's test_limits): window math,
 * period and reset computation, the quota headers, the cut-stream estimate, the rate-limit
 * store (in-process and its Lua scripts against real Redis), the quota statements against
 * PGlite and PostgreSQL, and the usage ledger writer's batching.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { DataSource } from 'typeorm';
import type { AppConfig } from '../src/infra/config/app.config';
import { dataSourceOptions } from '../src/infra/database/data-source';
import { migrateTarget, runMigrations } from '../src/infra/database/migrate';
import { createLogger } from '../src/infra/logging/logger';
import { monthStartUtc, nextMonthStartUtc, quotaPeriodAt } from '../src/modules/limits/quota-period';
import type { AppError } from '../src/contracts/app-error';
import { limitHeaders, quotaHeaders } from '../src/http/core/limit-headers';
import type { LimitRejections } from '../src/modules/limits/limit-rejections';
import { type QuotaReservation, QuotaService } from '../src/modules/limits/quota.service';
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
import { cutStreamUsage } from '../src/contracts/token-estimate';
import { UsageWriter } from '../src/modules/usage/usage-writer';
import { BUDGET_SWEEP_SQL, batchStatement } from '../src/modules/usage/usage-writes.sql';
import { replay, sumEvents, type UsageEvent } from '../src/modules/usage/usage-journal';
import { ShutdownState } from '../src/infra/lifecycle/shutdown-state';
import { closedPortUrl } from './fakes/fake-server';
import { isolatedPostgres } from './harness/app';
import { describeServices, SERVICES_REDIS_URL } from './harness/environment';
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
    rid: 'r',
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
    // API.md: never zero for a non-empty prompt (a blank one still holds at least one token).
    expect(cutStreamUsage('   ', 0, 16)).toEqual({ promptTokens: 1, completionTokens: 0 });
    expect(cutStreamUsage('', 0, 16)).toEqual({ promptTokens: 0, completionTokens: 0 });
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
    budgetExhausted: () => seen.push({ kind: 'quota_rejected', type: 'budget' }),
  } as unknown as LimitRejections;
  let quota: QuotaService;
  let writer: UsageWriter;
  let database: Database;
  const reserve = (id: string) => quota.reserve(id, randomUUID());
  /** A request's usage charged to the period of `reservation`. */
  const charge = (reservation: QuotaReservation, tokens: number) =>
    writer.record({
      keyId: reservation.keyId,
      day: clock.now().toISOString().slice(0, 10),
      model: 'm',
      cached: false,
      promptTokens: tokens,
      completionTokens: 0,
      quotaResetAt: reservation.resetAt.toISOString(),
    });
  const release = (reservation: QuotaReservation) =>
    writer.release({
      rid: reservation.rid,
      keyId: reservation.keyId,
      resetAt: reservation.resetAt.toISOString(),
      after: 0,
    });

  beforeAll(async () => {
    ({ db, close } = await open());
    database = databaseOf(db);
    quota = new QuotaService(database, clock, rejections);
    writer = writerFor(database);
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
    expect((await reserve(id)).requestsUsed).toBe(1);
    expect((await reserve(id)).requestsUsed).toBe(2);
    const refused = (await reserve(id).catch((error: unknown) => error)) as AppError;
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
    for (let i = 0; i < 3; i += 1) await reserve(id);
    expect((await counters(id)).requests).toBe(3);
  });

  it('release gives the unit back; token charges add up', async () => {
    const id = await insertKey({ monthlyQuota: 1 });
    const reservation = await reserve(id);
    expect(await release(reservation)).toBe(true);
    const again = await reserve(id);
    charge(again, 17);
    charge(again, 0);
    charge(again, 3);
    await writer.flush();
    expect(await counters(id)).toMatchObject({ requests: 1, tokens: 20 });
  });

  it('token charges are summed per key and written within 100 ms', async () => {
    const id = await insertKey({ monthlyTokenQuota: 1000 });
    const timed = writerFor(database, 1000);
    timed.onModuleInit();
    try {
      const reservation = await reserve(id);
      for (let i = 0; i < 5; i += 1) {
        timed.record({
          keyId: id,
          day: '2026-11-24',
          model: 'm',
          cached: false,
          promptTokens: 10,
          completionTokens: 0,
          quotaResetAt: reservation.resetAt.toISOString(),
        });
      }
      expect((await counters(id)).tokens).toBe(0);
      // Within 100 ms on a quiet machine; a loaded one may run the timer late (bounded wait).
      for (const started = Date.now(); (await counters(id)).tokens === 0 && Date.now() - started < 2000;) {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect((await counters(id)).tokens).toBe(50);
    } finally {
      await timed.onApplicationShutdown();
    }
  });

  it('the token quota counts written charges: once they are written the next reservation is refused', async () => {
    const id = await insertKey({ monthlyTokenQuota: 100 });
    const first = await reserve(id);
    charge(first, 60);
    await writer.flush();
    const second = await reserve(id);
    expect(second.tokensUsed).toBe(60);
    expect(await counters(id)).toMatchObject({ requests: 2, tokens: 60 });
    charge(second, 50);
    await writer.flush();
    await expect(reserve(id)).rejects.toMatchObject({ code: 'quota_exhausted' });
    expect(await counters(id)).toMatchObject({ requests: 2, tokens: 110 });
  });

  it('a give-back is applied once however often it is retried, and only if its reservation happened', async () => {
    const id = await insertKey({ monthlyQuota: 10 });
    const reservation = await reserve(id);
    await reserve(id);
    // A retry after an ambiguous failure (the first attempt committed, its reply was lost): no-op.
    for (let i = 0; i < 3; i += 1) expect(await release(reservation)).toBe(true);
    expect((await counters(id)).requests).toBe(1);
    // A reservation that never committed (refused, or cancelled by statement_timeout): nothing to give back.
    expect(await release({ ...reservation, rid: randomUUID() })).toBe(true);
    expect((await counters(id)).requests).toBe(1);
  });

  it('a batch retried after an ambiguous failure is applied once', async () => {
    const id = await insertKey({ monthlyTokenQuota: 1000 });
    const reservation = await reserve(id);
    const statement = batchStatement({
      id: `test-batch-${randomUUID()}`,
      rows: [
        {
          keyId: id,
          day: '2026-11-24',
          model: 'm',
          requests: 2,
          cachedRequests: 0,
          promptTokens: 7,
          completionTokens: 9,
        },
      ],
      charges: [{ keyId: id, resetAt: reservation.resetAt.toISOString(), tokens: 16 }],
    });
    for (let i = 0; i < 3; i += 1) await db.query(statement.text, statement.values);
    expect((await counters(id)).tokens).toBe(16);
    const [row] = await db.query('SELECT requests, prompt_tokens FROM key_usage_daily WHERE key_id = $1', [id]);
    expect([Number(row.requests), Number(row.prompt_tokens)]).toEqual([2, 7]);
  });

  it("a key's rows from before and after it moved team are one row of the key ledger (one upsert names it once)", async () => {
    const id = await insertKey({});
    const row = { keyId: id, day: '2026-11-24', model: 'm', requests: 1, cachedRequests: 0, promptTokens: 3 };
    const statement = batchStatement({
      id: `test-batch-${randomUUID()}`,
      rows: [
        { ...row, completionTokens: 4 },
        { ...row, teamId: null, completionTokens: 5 },
      ],
      charges: [],
    });
    await db.query(statement.text, statement.values);
    const [summed] = await db.query('SELECT requests, completion_tokens FROM key_usage_daily WHERE key_id = $1', [id]);
    expect([Number(summed.requests), Number(summed.completion_tokens)]).toEqual([2, 9]);
  });

  it('the token quota refuses once used up (type tokens), whatever the request quota', async () => {
    const id = await insertKey({ monthlyQuota: 100, monthlyTokenQuota: 50, tokens: 50 });
    await expect(reserve(id)).rejects.toMatchObject({
      code: 'quota_exhausted',
      message: expect.stringContaining('token quota of 50'),
    });
    expect(seen).toEqual([{ kind: 'quota_rejected', type: 'tokens' }]);
  });

  it('a request at or after quota_reset_at starts a new period with zero usage, in the same statement', async () => {
    const id = await insertKey({ monthlyQuota: 2, used: 2, tokens: 900 });
    await expect(reserve(id)).rejects.toMatchObject({ code: 'quota_exhausted' });
    clock.set('2026-12-01T00:00:00.000Z');
    const reservation = await reserve(id);
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
    await reserve(id);
    expect(await counters(id)).toMatchObject({
      requests: 1,
      resetAt: '2027-04-01T00:00:00.000Z',
      start: '2027-03-01T00:00:00.000Z',
    });
  });

  it('a quota of 0 refuses also across a rollover, and the 402 names the new period’s reset', async () => {
    const id = await insertKey({ monthlyQuota: 0 });
    clock.set('2026-12-05T00:00:00.000Z');
    await expect(reserve(id)).rejects.toMatchObject({
      message: expect.stringContaining('2027-01-01T00:00:00.000Z'),
    });
  });

  describe('budgets', () => {
    /** 1 unit of CURRENCY in femto-units. */
    const UNIT = 10n ** 15n;
    async function budgeted(budget: string): Promise<string> {
      const id = await insertKey();
      await db.query('UPDATE api_keys SET monthly_budget = $2 WHERE id = $1', [id, budget]);
      return id;
    }
    async function budgetState(id: string): Promise<{ spent: number; reserved: number; rows: number }> {
      const [row] = await db.query('SELECT budget_spent, budget_reserved FROM api_keys WHERE id = $1', [id]);
      const [held] = await db.query('SELECT count(*)::int AS n FROM budget_reservations WHERE owner_id = $1', [id]);
      return { spent: Number(row.budget_spent), reserved: Number(row.budget_reserved), rows: Number(held.n) };
    }
    const reserveBudget = (id: string, units: bigint) =>
      quota.reserve(id, randomUUID(), clock.now(), 0, { budget: units, holder: 'test-holder' });
    /** The served request's usage with its cost, settling the reservation's budget rows in its batch. */
    const settle = (reservation: QuotaReservation, cost: bigint) =>
      writer.record(
        {
          keyId: reservation.keyId,
          day: clock.now().toISOString().slice(0, 10),
          model: 'm',
          cached: false,
          promptTokens: 1,
          completionTokens: 1,
          quotaResetAt: reservation.resetAt.toISOString(),
          cost: cost.toString(),
          settles: reservation.rid,
        },
        reservation.rid,
      );

    it('reserves the largest cost while spent + reserved stays within the budget, then 402 budget_exhausted naming the key', async () => {
      const id = await budgeted('10');
      await reserveBudget(id, 4n * UNIT);
      await reserveBudget(id, 6n * UNIT);
      expect(await budgetState(id)).toEqual({ spent: 0, reserved: 10, rows: 2 });
      const refused = (await reserveBudget(id, 1n).catch((error: unknown) => error)) as AppError;
      expect(refused).toMatchObject({ code: 'budget_exhausted', param: 'key' });
      expect(seen).toEqual([{ kind: 'quota_rejected', type: 'budget' }]);
      expect(await budgetState(id)).toEqual({ spent: 0, reserved: 10, rows: 2 });
    });

    it('a served request settles to its real cost in its batch, once, also when the batch is written again', async () => {
      const id = await budgeted('10');
      const reservation = await reserveBudget(id, 4n * UNIT);
      settle(reservation, 3n * UNIT + 1n); // a cost below the reservation, to the last femto-unit
      await writer.flush();
      const [row] = await db.query('SELECT budget_spent::text AS spent FROM api_keys WHERE id = $1', [id]);
      expect(row.spent).toBe('3.000000000000001');
      expect(await budgetState(id)).toMatchObject({ reserved: 0, rows: 0 });
      // The batch again, as a retry after a lost reply would send it: nothing changes.
      const batch = {
        id: 'retried-batch',
        rows: [],
        charges: [{ keyId: id, resetAt: reservation.resetAt.toISOString(), tokens: 2, cost: '7' }],
        settles: [reservation.rid],
      };
      for (let i = 0; i < 2; i += 1) await database.query(batchStatement(batch).text, batchStatement(batch).values);
      const [again] = await db.query(
        'SELECT budget_spent::text AS spent, quota_tokens_used FROM api_keys WHERE id = $1',
        [id],
      );
      expect(again.spent).toBe('3.000000000000008');
      expect(await budgetState(id)).toMatchObject({ reserved: 0, rows: 0 });
    });

    it('a key that changes teams within one batch: one key ledger row, a row per team, the batch written', async () => {
      const id = await insertKey();
      const teams = [randomUUID(), randomUUID()];
      for (const team of teams) {
        await db.query(
          `INSERT INTO teams (id, name, created_at, updated_at, quota_period_start, quota_reset_at)
           VALUES ($1, 't', now(), now(), now(), now() + interval '1 day')`,
          [team],
        );
      }
      const day = clock.now().toISOString().slice(0, 10);
      for (const teamId of [teams[0], teams[1], teams[1]]) {
        writer.record({
          keyId: id,
          teamId,
          day,
          model: 'm',
          cached: false,
          promptTokens: 1,
          completionTokens: 2,
          quotaResetAt: null,
          cost: '5',
        });
      }
      await writer.flush();
      expect(writer.pending).toEqual({ rows: 0, batches: 0, releases: 0 });
      const [keyRow] = await db.query('SELECT requests, cost::text AS cost FROM key_usage_daily WHERE key_id = $1', [
        id,
      ]);
      expect({ requests: Number(keyRow.requests), cost: keyRow.cost }).toEqual({
        requests: 3,
        cost: '0.000000000000015',
      });
      const teamRows = await db.query(
        'SELECT team_id, requests FROM team_usage_daily WHERE team_id = ANY($1::uuid[])',
        [teams],
      );
      expect(
        Object.fromEntries(
          teamRows.map((row: { team_id: string; requests: number }) => [row.team_id, Number(row.requests)]),
        ),
      ).toEqual({
        [teams[0]]: 1,
        [teams[1]]: 2,
      });
    });

    it('a free request gives its whole reservation back, once', async () => {
      const id = await budgeted('10');
      const reservation = await reserveBudget(id, 4n * UNIT);
      expect(await release(reservation)).toBe(true);
      expect(await release(reservation)).toBe(true);
      expect(await budgetState(id)).toEqual({ spent: 0, reserved: 0, rows: 0 });
    });

    it('the sweep gives back only reservations whose holder stopped renewing them', async () => {
      const id = await budgeted('10');
      await reserveBudget(id, 2n * UNIT);
      const lapsed = await reserveBudget(id, 3n * UNIT);
      await db.query(`UPDATE budget_reservations SET expires_at = now() - interval '1 second' WHERE id = $1`, [
        lapsed.rid,
      ]);
      const [swept] = await db.query(BUDGET_SWEEP_SQL);
      expect(Number(swept.released)).toBe(1);
      expect(await budgetState(id)).toEqual({ spent: 0, reserved: 2, rows: 1 });
      // The lapsed request's settlement comes late: its cost counts, its amount is not taken off twice.
      settle(lapsed, 1n * UNIT);
      await writer.flush();
      expect(await budgetState(id)).toEqual({ spent: 1, reserved: 2, rows: 1 });
    });
  });

  it('release and token charges never touch a later period', async () => {
    const id = await insertKey({ monthlyQuota: 10 });
    const old = await reserve(id);
    clock.set('2026-12-01T00:00:01.000Z');
    await reserve(id);
    await release(old);
    charge(old, 500);
    await writer.flush();
    expect(await counters(id)).toMatchObject({ requests: 1, tokens: 0 });
  });

  it('200 concurrent reservations on a quota of 50: exactly 50 succeed', async () => {
    const id = await insertKey({ monthlyQuota: 50 });
    const results = await Promise.allSettled(Array.from({ length: 200 }, () => reserve(id)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(50);
    expect(
      results.filter((r) => r.status === 'rejected' && (r.reason as { code: string }).code === 'quota_exhausted'),
    ).toHaveLength(150);
    expect((await counters(id)).requests).toBe(50);
  }, 30_000);

  it('concurrent first requests of a new period roll it over once', async () => {
    const id = await insertKey({ monthlyQuota: 20, used: 20, tokens: 5 });
    clock.set('2026-12-01T00:00:00.000Z');
    const results = await Promise.allSettled(Array.from({ length: 40 }, () => reserve(id)));
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
    const { target, drop } = await isolatedPostgres();
    const db = await new DataSource(dataSourceOptions(target)).initialize();
    await migrateTarget(target, db);
    return {
      db,
      close: async () => {
        await db.destroy();
        await drop();
      },
    };
  });
});

/** A usage writer on `db` with a journal of its own; `intervalMs` 0: flushed by hand. */
function writerFor(
  db: Database,
  intervalMs = 0,
  dataDir = mkdtempSync(join(tmpdir(), 'usage-writer-')),
  dbTimeoutMs = 5000,
): UsageWriter {
  return new UsageWriter(db, silent, { dataDir, shutdownGraceMs: 1000, dbTimeoutMs }, new ShutdownState(), intervalMs);
}

describe('UsageWriter', () => {
  /**
   * A database double: fails the first `failures` calls (down, or a timeout: the outcome
   * unknown), rejects statements holding `poisoned` as bad input.
   */
  function fakeDb(failures = 0, poisoned: string | null = null) {
    const queries: { sql: string; params: unknown[] }[] = [];
    let toFail = failures;
    const query = async (sql: string, params: unknown[]) => {
      if (toFail > 0) {
        toFail -= 1;
        throw new Error('database down');
      }
      if (poisoned !== null && params.includes(poisoned)) throw new DatabaseRejected();
      queries.push({ sql, params });
      return { rows: [], rowCount: 0 };
    };
    const db = { query, run: query } as unknown as Database;
    return { db, queries };
  }
  const entry: UsageEvent = {
    keyId: 'k1',
    day: '2026-11-24',
    model: 'mock-a',
    cached: false,
    promptTokens: 3,
    completionTokens: 5,
    quotaResetAt: null,
  };
  /** The ledger rows of a batch statement's parameters (after the batch id, 7 per row). */
  const rowsOf = (params: unknown[]) => params.slice(1);
  /** The cost column of a ledger row of a model without prices. */
  const NO_COST = '0.000000000000000';

  it('sums per key, UTC day and model and writes them in one statement that carries the batch id', async () => {
    const { db, queries } = fakeDb();
    const writer = writerFor(db);
    writer.record(entry);
    writer.record({ ...entry, cached: true, promptTokens: 0, completionTokens: 0 });
    writer.record({ ...entry, model: 'mock-b' });
    writer.record({ ...entry, day: '2026-11-25' });
    await writer.flush();
    expect(queries).toHaveLength(1);
    expect(queries[0].sql).toMatch(/INSERT INTO usage_writes/);
    expect(queries[0].sql).toMatch(/ON CONFLICT \(key_id, day, model\) DO UPDATE/);
    expect(queries[0].params[0]).toEqual(expect.stringMatching(/^usage\..+:1-4$/));
    expect(rowsOf(queries[0].params)).toEqual([
      ...['k1', '2026-11-24', 'mock-a', 2, 1, 3, 5, NO_COST],
      ...['k1', '2026-11-24', 'mock-b', 1, 0, 3, 5, NO_COST],
      ...['k1', '2026-11-25', 'mock-a', 1, 0, 3, 5, NO_COST],
    ]);
    await writer.flush();
    expect(queries).toHaveLength(1); // nothing new, no write
  });

  it('a batch whose write failed is retried as it is, with its id; newer sums go in a new batch', async () => {
    const { db, queries } = fakeDb(1);
    const writer = writerFor(db);
    writer.record(entry);
    await writer.flush(); // fails: the outcome is unknown
    writer.record(entry);
    await writer.flush();
    expect(queries).toHaveLength(2);
    expect(queries[0].params[0]).toMatch(/:1-1$/);
    expect(rowsOf(queries[0].params)).toEqual(['k1', '2026-11-24', 'mock-a', 1, 0, 3, 5, NO_COST]);
    expect(queries[1].params[0]).toMatch(/:2-2$/);
    expect(rowsOf(queries[1].params)).toEqual(['k1', '2026-11-24', 'mock-a', 1, 0, 3, 5, NO_COST]);
  });

  it('one row the database rejects is quarantined (logged with its figures); every other row is written', async () => {
    const { db, queries } = fakeDb(0, 'poisoned-key');
    const lines: string[] = [];
    const writer = new UsageWriter(
      db,
      createLogger('info', { write: (line: string) => lines.push(line) }),
      { dataDir: mkdtempSync(join(tmpdir(), 'usage-writer-')), shutdownGraceMs: 1000, dbTimeoutMs: 5000 },
      new ShutdownState(),
      0,
    );
    for (let i = 0; i < 7; i += 1) writer.record({ ...entry, keyId: `key-${i}` });
    writer.record({ ...entry, keyId: 'poisoned-key' });
    await writer.flush();
    const written = queries.flatMap((q) => rowsOf(q.params).filter((_, i) => i % 8 === 0));
    expect(written.sort()).toEqual(Array.from({ length: 7 }, (_, i) => `key-${i}`));
    expect(writer.pending).toEqual({ rows: 0, batches: 0, releases: 0 });
    const quarantine = lines.map((line) => JSON.parse(line)).find((line) => /quarantined/.test(line.msg));
    expect(quarantine.batch.rows).toEqual([
      expect.objectContaining({ keyId: 'poisoned-key', requests: 1, promptTokens: 3, completionTokens: 5 }),
    ]);
  });

  it('writes what is pending at shutdown, around the down-gate, retrying a failing database within the grace', async () => {
    const { db, queries } = fakeDb(3);
    const writer = writerFor(db);
    writer.onModuleInit();
    writer.record(entry);
    await writer.onApplicationShutdown();
    expect(queries).toHaveLength(1);
    expect(writer.pending).toEqual({ rows: 0, batches: 0, releases: 0 });
  });

  it('compacting the journal keeps what is pending: events recorded while a write was under way, open reservations', async () => {
    let unblock!: () => void;
    const blocked = new Promise<void>((resolve) => (unblock = resolve));
    const queries: string[] = [];
    const query = async (sql: string) => {
      queries.push(sql);
      if (queries.length === 1) await blocked;
      return { rows: [], rowCount: 0 };
    };
    const dataDir = mkdtempSync(join(tmpdir(), 'usage-writer-'));
    const writer = writerFor({ query, run: query } as unknown as Database, 0, dataDir);
    writer.record(entry);
    const flushing = writer.flush(); // its batch's write hangs until unblocked
    await new Promise((resolve) => setImmediate(resolve));
    writer.reserving({ rid: 'open', keyId: 'k1', resetAt: '2026-12-01T00:00:00.000Z' });
    const during = 20_000; // past the compaction threshold while the write is under way
    for (let i = 0; i < during; i += 1) writer.record(entry);
    unblock();
    await flushing;
    const [file] = readdirSync(join(dataDir, 'usage-journal'));
    const text = readFileSync(join(dataDir, 'usage-journal', file), 'utf8');
    const pending = replay(
      text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line)),
    );
    expect(text.split('\n').filter(Boolean).length).toBeLessThan(100); // compacted
    const requests =
      pending.batches.flatMap((batch) => batch.rows).reduce((sum, row) => sum + row.requests, 0) +
      sumEvents(pending.events.map(({ event }) => event)).rows.reduce((sum, row) => sum + row.requests, 0);
    expect(requests).toBe(during);
    expect(pending.open.map((reservation) => reservation.rid)).toEqual(['open']);
  });

  it('a crash loses nothing: the next process takes over the journal, and taking it over twice writes nothing twice; a reservation the crash cut is given back', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'usage-writer-'));
    const crash = (mode: string) =>
      spawnSync(
        process.execPath,
        ['-r', '@swc-node/register', join(__dirname, 'fixtures', 'usage-writer-crash.ts'), dataDir, mode],
        {
          encoding: 'utf8',
          timeout: 30_000,
        },
      );
    expect(crash('record').signal).toBe('SIGKILL');
    const journals = () => readdirSync(join(dataDir, 'usage-journal'));
    const [recorded] = journals();
    const origin = recorded.replace(/\.jsonl$/, '');
    // A second process takes the journal over and dies too before writing anything.
    expect(crash('adopt').signal).toBe('SIGKILL');
    expect(journals()).not.toContain(recorded);
    const up = fakeDb();
    const next = writerFor(up.db, 0, dataDir, 0);
    const releasesOf = (rid: string) =>
      up.queries.filter((q) => /quota_requests_used -/.test(q.sql) && q.params.includes(rid)).length;
    const ledgerRows = () => up.queries.filter((q) => /key_usage_daily/.test(q.sql)).map((q) => rowsOf(q.params));
    return next.flush().then(async () => {
      // The same ids the first process gave them: a write the first attempt made would be a no-op.
      const ids = up.queries.filter((q) => /usage_writes \(id\) VALUES/.test(q.sql)).map((q) => q.params[0]);
      expect(ids.sort()).toEqual([`${origin}:1-1`, `${origin}:2-2`]);
      expect(ledgerRows()).toEqual(
        expect.arrayContaining([
          ['k1', '2026-11-24', 'mock-a', 1, 0, 3, 5, NO_COST],
          ['k1', '2026-11-24', 'mock-a', 1, 0, 10, 5, NO_COST],
        ]),
      );
      expect(releasesOf('r1')).toBe(1);
      // r2 was open when the process died: given back once its statement cannot be running any
      // more (DB_TIMEOUT_MS + 1 s after the takeover); r3 was concluded by its request's usage.
      expect(next.pending).toEqual({ rows: 0, batches: 0, releases: 1 });
      expect(releasesOf('r2')).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      await next.flush();
      expect([releasesOf('r1'), releasesOf('r2'), releasesOf('r3')]).toEqual([1, 1, 0]);
      expect(next.pending).toEqual({ rows: 0, batches: 0, releases: 0 });
      expect(journals()).toHaveLength(1); // only the live process's own
    });
  }, 60_000);
});
