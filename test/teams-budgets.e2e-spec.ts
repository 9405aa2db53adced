/**
 * Teams, prices and budgets (API.md "Teams, prices and budgets"): the team admin API, a request
 * passing its key's and its team's limits, costs from real token counts, and budgets that spend
 * never passes: reserved at the largest possible cost, settled to the real cost on every exit
 * path. Runs on PGlite (one replica) and, with test:services, on PostgreSQL + Redis with two
 * replicas sharing them.
 */
import request from 'supertest';
import { startTestApp, type TestApp } from './harness/app';
import { describeInProcess, SERVICES_DATABASE_URL, SERVICES_REDIS_URL } from './harness/environment';
import { adminAuth, createKey } from './harness/keys';
import { listenOnLoopback, openPost } from './harness/listen';

/**
 * `flat`: output only, 0.25 per token, 4 tokens per answer (the mock writes at least 8 words, cut
 * at max_new_tokens): every request costs exactly 1 and reserves exactly 1.
 * `metered`: 1 per prompt token, 2 per completion token.
 */
const MODELS = `
default_model: flat
models:
  - name: flat
    provider: mock
    max_new_tokens: 4
    default_max_new_tokens: 4
    pricing: { input: 0, output: 250000 }
  - name: metered
    provider: mock
    max_new_tokens: 8
    default_max_new_tokens: 8
    pricing: { input: 1000000, output: 2000000, cached_input: 500000 }
  - name: embed
    kind: embedding
    provider: mock
    pricing: { input: 1000000, output: 0 }
`;

const withServices = Boolean(SERVICES_DATABASE_URL && SERVICES_REDIS_URL);
const NO_RPM = { rpm_limit: 100_000 };

function tally(statuses: number[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

async function createTeam(app: TestApp, fields: Record<string, unknown>): Promise<string> {
  const res = await app
    .http()
    .post('/admin/teams')
    .set(...adminAuth())
    .send({ name: 'team', ...fields });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

async function teamOf(app: TestApp, id: string) {
  const res = await app
    .http()
    .get(`/admin/teams/${id}`)
    .set(...adminAuth());
  expect(res.status).toBe(200);
  return res.body as { usage: { requests: number; tokens: number; cost: number; reserved: number }; key_count: number };
}

/** Polls until the team holds no reservation (settlements are written in the background); returns its usage. */
async function settledTeam(app: TestApp, id: string) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const team = await teamOf(app, id);
    if (team.usage.reserved === 0 || Date.now() > deadline) return team;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describeInProcess('teams, prices and budgets', 'starts its own replicas with priced mock models', () => {
  let apps: TestApp[];
  let targets: string[];
  let first: TestApp;
  beforeAll(async () => {
    first = await startTestApp({ modelsYaml: MODELS });
    apps = [first];
    // With PostgreSQL and Redis, a second replica shares them: limits must hold across both.
    if (withServices) apps.push(await startTestApp({ modelsYaml: MODELS, shareWith: first }));
    targets = await Promise.all(apps.map((app) => listenOnLoopback(app)));
  }, 60_000);
  afterAll(async () => {
    for (const app of [...apps].reverse()) await app.close();
  }, 30_000);

  const generate = (key: string, body: Record<string, unknown>, target = targets[0]) =>
    request(target).post('/v1/generate').set('X-API-Key', key).send(body);

  it('the team admin API: create, read with usage and key count, change, refuse to delete while keys belong', async () => {
    const created = await first
      .http()
      .post('/admin/teams')
      .set(...adminAuth())
      .send({ name: 'search', rpm_limit: 100, monthly_budget: 12.5, max_concurrent: 4 });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'search', rpm_limit: 100, monthly_budget: 12.5, max_concurrent: 4 });
    const teamId = created.body.id as string;
    const { id: keyId } = await createKey(first, { team_id: teamId, monthly_budget: 3 });
    const key = await first
      .http()
      .get(`/admin/keys/${keyId}`)
      .set(...adminAuth());
    expect(key.body).toMatchObject({ team_id: teamId, monthly_budget: 3, usage: { cost: 0 } });
    expect(await teamOf(first, teamId)).toMatchObject({ key_count: 1, usage: { requests: 0, cost: 0 } });

    const changed = await first
      .http()
      .patch(`/admin/teams/${teamId}`)
      .set(...adminAuth())
      .send({ name: 'search-2', monthly_budget: null });
    expect(changed.body).toMatchObject({ name: 'search-2', monthly_budget: null, rpm_limit: 100 });
    const listed = await first
      .http()
      .get('/admin/teams?limit=100')
      .set(...adminAuth());
    expect(listed.body.data.map((team: { id: string }) => team.id)).toContain(teamId);

    const refused = await first
      .http()
      .delete(`/admin/teams/${teamId}`)
      .set(...adminAuth());
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('team_not_empty');
    await first
      .http()
      .patch(`/admin/keys/${keyId}`)
      .set(...adminAuth())
      .send({ team_id: null });
    const deleted = await first
      .http()
      .delete(`/admin/teams/${teamId}`)
      .set(...adminAuth());
    expect(deleted.status).toBe(204);
    const gone = await first
      .http()
      .get(`/admin/teams/${teamId}`)
      .set(...adminAuth());
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('team_not_found');
  });

  it('a key naming an unknown team, or a budget that is not an amount, is a 4xx naming the field; nothing is created', async () => {
    const unknown = await first
      .http()
      .post('/admin/keys')
      .set(...adminAuth())
      .send({ name: 'k', team_id: '00000000-0000-4000-8000-000000000000' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ code: 'team_not_found', param: 'team_id' });
    for (const monthly_budget of [-1, '5', 1e13, 0.1234567890123456]) {
      const res = await first
        .http()
        .post('/admin/teams')
        .set(...adminAuth())
        .send({ name: 't', monthly_budget });
      expect([res.status, res.body.error?.param]).toEqual([400, 'monthly_budget']);
    }
  });

  it('a team budget that fits exactly N requests: 5×N at once over its three keys and every replica serve exactly N, spend equals the budget', async () => {
    const n = 7;
    const teamId = await createTeam(first, { monthly_budget: n });
    const keys = await Promise.all([0, 1, 2].map(() => createKey(first, { ...NO_RPM, team_id: teamId })));
    const responses = await Promise.all(
      Array.from({ length: 5 * n }, (_, i) =>
        generate(keys[i % 3].key, { prompt: `request ${i}` }, targets[i % targets.length]),
      ),
    );
    expect(tally(responses.map((res) => res.status))).toEqual({ 200: n, 402: 4 * n });
    const refused = responses.find((res) => res.status === 402)!;
    expect(refused.body.error).toMatchObject({ code: 'budget_exhausted', param: 'team' });
    const team = await settledTeam(first, teamId);
    expect(team.usage).toMatchObject({ requests: n, cost: n, reserved: 0 });
    const usage = await first
      .http()
      .get(`/admin/teams/${teamId}/usage`)
      .set(...adminAuth());
    expect(usage.body.data).toEqual([
      expect.objectContaining({ model: 'flat', requests: n, completion_tokens: 4 * n, cost: n }),
    ]);
    // Spend is at the budget: the next request is refused on every replica.
    for (const target of targets)
      expect((await generate(keys[0].key, { prompt: 'one more' }, target)).status).toBe(402);
  }, 60_000);

  it('a key budget refuses with param key; the cost is in the key usage and in llm_cost_total', async () => {
    const { key, id } = await createKey(first, { ...NO_RPM, monthly_budget: 2 });
    const statuses = [];
    for (let i = 0; i < 3; i += 1) statuses.push((await generate(key, { prompt: `key budget ${i}` })).status);
    expect(statuses).toEqual([200, 200, 402]);
    const refused = await generate(key, { prompt: 'again' });
    expect(refused.body.error).toMatchObject({ code: 'budget_exhausted', param: 'key' });
    const view = await first
      .http()
      .get(`/admin/keys/${id}`)
      .set(...adminAuth());
    expect(view.body.usage).toMatchObject({ requests: 2, cost: 2 });
    const daily = await first
      .http()
      .get(`/admin/keys/${id}/usage`)
      .set(...adminAuth());
    expect(daily.body.data).toEqual([expect.objectContaining({ model: 'flat', cost: 2 })]);
    const metrics = await first.http().get('/metrics');
    const spent = /^llm_cost_total\{model="flat"\} (\S+)$/m.exec(metrics.text);
    expect(Number(spent?.[1])).toBeGreaterThanOrEqual(2);
  }, 30_000);

  it('no route that reaches a backend bypasses a budget: each answers 402 budget_exhausted for a spent team', async () => {
    const teamId = await createTeam(first, { monthly_budget: 0 });
    const { key } = await createKey(first, { ...NO_RPM, team_id: teamId });
    const calls: [string, Record<string, unknown>][] = [
      ['/v1/generate', { model: 'metered', prompt: 'hello' }],
      ['/v1/completions', { model: 'metered', prompt: 'hello' }],
      ['/v1/chat/completions', { model: 'metered', messages: [{ role: 'user', content: 'hello' }] }],
      ['/v1/chat/completions', { model: 'metered', messages: [{ role: 'user', content: 'hi' }], stream: true }],
      ['/v1/embeddings', { model: 'embed', input: 'hello' }],
    ];
    for (const [path, body] of calls) {
      const res = await request(targets[0]).post(path).set('Authorization', `Bearer ${key}`).send(body);
      expect({ path, status: res.status, code: res.body.error?.code }).toEqual({
        path,
        status: 402,
        code: 'budget_exhausted',
      });
    }
    expect((await teamOf(first, teamId)).usage).toMatchObject({ requests: 0, cost: 0, reserved: 0 });
  });

  describe('every exit path settles the reservation to the billing rules', () => {
    /** A key with a budget in a team with a budget, on the metered model. */
    async function budgeted() {
      const teamId = await createTeam(first, { monthly_budget: 1000 });
      const created = await createKey(first, { ...NO_RPM, team_id: teamId, monthly_budget: 1000 });
      return { ...created, teamId };
    }
    /** A generation whose client goes away after `ms`. */
    async function cutAfter(ms: number, key: string, body: Record<string, unknown>): Promise<void> {
      const post = openPost(targets[0], '/v1/generate', { 'X-API-Key': key }, body);
      await new Promise((resolve) => setTimeout(resolve, ms));
      post.cut();
      await post.closed;
    }
    const keyCost = async (id: string) =>
      (
        await first
          .http()
          .get(`/admin/keys/${id}`)
          .set(...adminAuth())
      ).body.usage.cost as number;

    it('success: prompt tokens × input + completion tokens × output', async () => {
      const { key, id, teamId } = await budgeted();
      const res = await generate(key, { model: 'metered', prompt: 'three word prompt' });
      expect(res.status).toBe(200);
      const { prompt_tokens, completion_tokens } = res.body.usage;
      const cost = prompt_tokens * 1 + completion_tokens * 2;
      expect(cost).toBe(3 + 2 * 8);
      expect((await settledTeam(first, teamId)).usage).toMatchObject({ cost, reserved: 0 });
      expect(await keyCost(id)).toBe(cost);
    });

    it('a backend failure before any output: free, the reservation returns whole', async () => {
      const { key, id, teamId } = await budgeted();
      expect((await generate(key, { model: 'metered', prompt: '[mock:error] fails' })).status).toBe(502);
      expect((await settledTeam(first, teamId)).usage).toMatchObject({ cost: 0, reserved: 0, requests: 0 });
      expect(await keyCost(id)).toBe(0);
    });

    it('a stream cut after some tokens: the prompt and the tokens produced are charged', async () => {
      const { key, teamId } = await budgeted();
      // Two or three words are out after 400 ms.
      await cutAfter(400, key, { model: 'metered', prompt: '[mock:slow:150] cut me', stream: true });
      const team = await settledTeam(first, teamId);
      expect(team.usage.reserved).toBe(0);
      // 3 prompt words (the tag is one); between 1 and 7 of the 8 completion tokens were produced before the cut.
      expect(team.usage.cost).toBeGreaterThanOrEqual(3 + 2);
      expect(team.usage.cost).toBeLessThan(3 + 2 * 8);
      expect((team.usage.cost - 3) % 2).toBe(0);
    });

    it('the client gone before any output: the prompt tokens are charged', async () => {
      const { key, teamId } = await budgeted();
      await cutAfter(200, key, { model: 'metered', prompt: '[mock:hang] four words here' });
      const team = await settledTeam(first, teamId);
      expect(team.usage).toMatchObject({ reserved: 0, cost: 4 });
    });

    it('a shared generation whose starter leaves: charged in full once, to the sharer that received it', async () => {
      const { key, teamId } = await budgeted();
      const body = { model: 'metered', prompt: '[mock:slow:150] shared by two' };
      const starter = openPost(targets[0], '/v1/generate', { 'X-API-Key': key }, { ...body, stream: true });
      await new Promise((resolve) => setTimeout(resolve, 250)); // the stream is under way
      // .then() sends at once (supertest sends only when awaited).
      const sharer = generate(key, body).then((res) => res);
      await new Promise((resolve) => setTimeout(resolve, 300)); // the sharer has joined
      starter.cut();
      const res = await sharer;
      expect(res.body.cached).toBe(false); // it pays: the starter left
      expect(res.status).toBe(200);
      const team = await settledTeam(first, teamId);
      // One generation, charged once in full: 4 prompt words (the tag is one) + 8 × 2.
      expect(team.usage.reserved).toBe(0);
      expect(team.usage.cost).toBe(res.body.usage.prompt_tokens + 2 * res.body.usage.completion_tokens);
      expect(res.body.usage.completion_tokens).toBe(8);
    });

    it('a cache hit: one unit, no tokens, no cost', async () => {
      const { key, teamId } = await budgeted();
      const body = { model: 'metered', prompt: 'cache me please' };
      const paid = await generate(key, body);
      const hit = await generate(key, body);
      expect(hit.body.cached).toBe(true);
      const team = await settledTeam(first, teamId);
      expect(team.usage).toMatchObject({
        reserved: 0,
        requests: 2,
        cost: paid.body.usage.prompt_tokens + 2 * paid.body.usage.completion_tokens,
      });
    });
  });

  describe('key and team limits together', () => {
    it('the tighter refuses and param says which; the headers show the one with least left', async () => {
      const teamId = await createTeam(first, { rpm_limit: 3 });
      const { key } = await createKey(first, { rpm_limit: 10, team_id: teamId });
      const ok = await generate(key, { prompt: 'one' });
      expect(ok.headers['x-ratelimit-limit']).toBe('3');
      expect(ok.headers['x-ratelimit-remaining']).toBe('2');
      await generate(key, { prompt: 'two' });
      await generate(key, { prompt: 'three' });
      const refused = await generate(key, { prompt: 'four' });
      expect(refused.status).toBe(429);
      expect(refused.body.error.param).toBe('team');

      const roomy = await createTeam(first, { rpm_limit: 1000 });
      const { key: tight } = await createKey(first, { rpm_limit: 1, team_id: roomy });
      const first1 = await generate(tight, { prompt: 'a' });
      expect(first1.headers['x-ratelimit-limit']).toBe('1');
      const second = await generate(tight, { prompt: 'b' });
      expect([second.status, second.body.error.param]).toEqual([429, 'key']);
    });

    it('a team quota refuses with param team and shows in X-Quota-*; a key moved to another team passes that team', async () => {
      const full = await createTeam(first, { monthly_quota: 2 });
      const other = await createTeam(first, { monthly_quota: 100 });
      const { key, id } = await createKey(first, { ...NO_RPM, monthly_quota: 50, team_id: full });
      const one = await generate(key, { prompt: 'q1' });
      expect(one.headers['x-quota-limit']).toBe('2');
      expect(one.headers['x-quota-remaining']).toBe('1');
      await generate(key, { prompt: 'q2' });
      const refused = await generate(key, { prompt: 'q3' });
      expect(refused.status).toBe(402);
      expect(refused.body.error).toMatchObject({ code: 'quota_exhausted', param: 'team' });
      const moved = await first
        .http()
        .patch(`/admin/keys/${id}`)
        .set(...adminAuth())
        .send({ team_id: other });
      expect(moved.body.team_id).toBe(other);
      const after = await generate(key, { prompt: 'q4' });
      expect(after.status).toBe(200);
      expect(after.headers['x-quota-limit']).toBe('50'); // the key now has less left than its new team
    });

    it('team max_concurrent holds over its keys: the second key is refused while the first holds the slot', async () => {
      const teamId = await createTeam(first, { max_concurrent: 1 });
      const a = await createKey(first, { ...NO_RPM, team_id: teamId });
      const b = await createKey(first, { ...NO_RPM, team_id: teamId });
      const holding = openPost(targets[0], '/v1/generate', { 'X-API-Key': a.key }, { prompt: '[mock:hang] hold' });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const refused = await generate(b.key, { prompt: 'second' });
      expect([refused.status, refused.body.error.param]).toEqual([429, 'team']);
      holding.cut();
      await holding.closed;
    });
  });
});
