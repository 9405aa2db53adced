/**
 * Exactness under concurrency: the limits hold when many requests arrive at once, on one
 * replica (embedded and services mode) and across two replicas sharing PostgreSQL and Redis.
 * Budgets bypassed under concurrency and limits multiplied by the number of replicas are the
 * failures this file exists to catch.
 */
import request from 'supertest';
import { startTestApp, type TestApp } from './harness/app';
import { describeInProcess, describeServices } from './harness/environment';
import { adminAuth, createKey } from './harness/keys';
import { listenOnLoopback } from './harness/listen';

const NO_RPM = { rpm_limit: 100_000 };

/** Sends `count` generations at once, spread round-robin over `targets`; returns the statuses. */
async function burst(
  targets: string[],
  key: string,
  count: number,
  body: Record<string, unknown> = { prompt: 'at once' },
): Promise<number[]> {
  const responses = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      request(targets[i % targets.length])
        .post('/v1/generate')
        .set('X-API-Key', key)
        .send(body),
    ),
  );
  return responses.map((res) => res.status);
}

function tally(statuses: number[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

async function usageOf(app: TestApp, id: string): Promise<{ requests: number; tokens: number }> {
  const res = await app
    .http()
    .get(`/admin/keys/${id}`)
    .set(...adminAuth());
  return res.body.usage;
}

describeInProcess('one replica, 200 concurrent requests', 'needs a loopback listener on the in-process app', () => {
  let app: TestApp;
  let target: string;
  beforeAll(async () => {
    app = await startTestApp();
    target = await listenOnLoopback(app);
  }, 30_000);
  afterAll(() => app.close());

  it('monthly_quota 50: exactly 50 succeed and 150 get 402', async () => {
    const { key, id } = await createKey(app, { ...NO_RPM, monthly_quota: 50 });
    expect(tally(await burst([target], key, 200))).toEqual({ 200: 50, 402: 150 });
    expect((await usageOf(app, id)).requests).toBe(50);
    const ledger = await app
      .http()
      .get(`/admin/keys/${id}/usage`)
      .set(...adminAuth());
    expect(ledger.body.data).toEqual([expect.objectContaining({ requests: 50 })]);
  }, 60_000);

  it('rpm_limit 30: exactly 30 accepted and 170 get 429', async () => {
    const { key } = await createKey(app, { rpm_limit: 30 });
    expect(tally(await burst([target], key, 200))).toEqual({ 200: 30, 429: 170 });
  }, 60_000);
});

describeServices('two replicas sharing PostgreSQL and Redis', () => {
  let first: TestApp;
  let second: TestApp;
  let targets: string[];
  beforeAll(async () => {
    first = await startTestApp();
    second = await startTestApp({ shareWith: first });
    targets = [await listenOnLoopback(first), await listenOnLoopback(second)];
  }, 30_000);
  afterAll(async () => {
    await second.close();
    await first.close();
  });
  beforeEach(() => first.clock.set('2026-11-24T12:00:00.000Z'));

  it('rpm_limit 30: exactly 30 accepted across both', async () => {
    const { key } = await createKey(first, { rpm_limit: 30 });
    expect(tally(await burst(targets, key, 100))).toEqual({ 200: 30, 429: 70 });
    // The window is shared: once it passes, both accept again.
    first.clock.advance(60_000);
    expect(tally(await burst(targets, key, 2))).toEqual({ 200: 2 });
  }, 60_000);

  it('monthly_quota 50: exactly 50 of 200 succeed across both, 150 get 402', async () => {
    const { key, id } = await createKey(first, { ...NO_RPM, monthly_quota: 50 });
    expect(tally(await burst(targets, key, 200))).toEqual({ 200: 50, 402: 150 });
    expect((await usageOf(second, id)).requests).toBe(50);
  }, 60_000);

  it('a new month seen by both at once starts one period: the quota is exact again', async () => {
    const { key, id } = await createKey(first, { ...NO_RPM, monthly_quota: 20 });
    expect(tally(await burst(targets, key, 30))).toEqual({ 200: 20, 402: 10 });
    first.clock.set('2026-12-01T00:00:00.000Z');
    expect(tally(await burst(targets, key, 60))).toEqual({ 200: 20, 402: 40 });
    expect(await usageOf(first, id)).toMatchObject({ requests: 20 });
  }, 60_000);
});
