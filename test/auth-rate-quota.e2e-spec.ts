/**
 * Rate limits and quotas through HTTP (the seed's test_auth_rate_quota): requests beyond a
 * key's RPM get 429 and the window resets; generations consume quota, an exhausted quota gets
 * 402 and the monthly reset is respected; the X-RateLimit-* / X-Quota-* headers; TPM; token
 * charges (streams cut by the client included); failed generations are free; the usage
 * ledger; and the order of checks. Time moves with the injected FakeClock, never by sleeping.
 */
import { request as httpRequest } from 'node:http';
import { mockCompletion } from '../src/modules/providers/mock-answers';
import { Database } from '../src/infra/database/database.service';
import { UsageAccounting } from '../src/modules/usage/usage-accounting';
import { CACHE_HIT, FREE } from '../src/modules/usage/billing';
import { LEDGER_FLUSH_INTERVAL_MS } from '../src/modules/usage/usage-writer';
import { startTestApp, type TestApp } from './harness/app';
import { describeInProcess, isRemote } from './harness/environment';
import { adminAuth, createKey } from './harness/keys';
import { listenOnLoopback } from './harness/listen';
import { sseEvents } from './harness/sse';
import { generationParams } from './fakes/model-config';
import { sleep } from './fakes/fake-server';
import { FakeVllm } from './fakes/fake-vllm';

const MODELS = `default_model: mock-a
models:
  - name: mock-a
    provider: mock
    max_new_tokens: 64
    default_max_new_tokens: 16
  - name: mock-b
    provider: mock
    max_new_tokens: 64
    default_max_new_tokens: 16
  - name: mock-timeout
    provider: mock
    timeout_ms: 200
`;

/**
 * Tests that need this file's mock models (special prompts, mock-a/mock-b, exact token counts):
 * skipped against API_BASE, where the server runs its own models.yaml.
 */
function itWithMockModels(name: string, fn: jest.ProvidesCallback, timeout?: number): void {
  if (isRemote) it.skip(`${name} [skipped with API_BASE: needs this file's mock models]`, fn, timeout);
  else it(name, fn, timeout);
}

/**
 * Against API_BASE the server's real clock drives the one-minute rate-limit windows (aligned to
 * the epoch minute): a test that fills a window waits until at least 10 s of the current one are
 * left, so no boundary falls between its requests. In-process the FakeClock never moves by itself.
 */
async function awaitRoomInMinuteWindow(): Promise<void> {
  if (!isRemote) return;
  const intoWindow = Date.now() % 60_000;
  if (intoWindow >= 50_000) await sleep(60_000 - intoWindow + 50);
}

const START = '2026-11-24T12:00:00.000Z';
/** Generous RPM for tests about quotas, so the rate limit never interferes. */
const NO_RPM = { rpm_limit: 100_000 };

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp({ modelsYaml: MODELS });
}, 30_000);
afterAll(() => app.close());
beforeEach(() => app.clock.set(START));

// Every request reaches the backend (the cache would make repeats free of tokens).
const generate = (key: string, body: Record<string, unknown> = { prompt: 'hello there' }) =>
  app.http().post('/v1/generate').set('X-API-Key', key).set('Cache-Control', 'no-store').send(body);

async function keyView(
  id: string,
): Promise<{ usage: { requests: number; tokens: number; quota_reset_at: string }; quota_reset_at: string }> {
  const res = await app
    .http()
    .get(`/admin/keys/${id}`)
    .set(...adminAuth());
  expect(res.status).toBe(200);
  return res.body;
}

async function ledger(id: string, from = '2026-11-01', to = '2026-12-31'): Promise<Record<string, unknown>[]> {
  const res = await app
    .http()
    .get(`/admin/keys/${id}/usage`)
    .query({ from, to })
    .set(...adminAuth());
  expect(res.status).toBe(200);
  return res.body.data;
}

/** Retries an assertion until it passes (for effects that follow a connection cut). */
async function eventually(assertion: () => Promise<void>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await assertion();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(20);
    }
  }
}

/** Echo prompts make token counts exact: prompt = words incl. the tag, completion = the rest's words. */
function echo(words: number): { prompt: string; tokens: number } {
  const rest = Array.from({ length: words }, (_, i) => `w${i}`).join(' ');
  return { prompt: `[mock:echo] ${rest}`, tokens: words + 1 + words };
}

describe('rate limits (RPM)', () => {
  it('requests beyond the key’s rpm_limit get 429 rate_limit_exceeded with Retry-After', async () => {
    const { key } = await createKey(app, { rpm_limit: 3 });
    await awaitRoomInMinuteWindow();
    for (let i = 0; i < 3; i += 1) expect((await generate(key)).status).toBe(200);
    const res = await generate(key);
    expect(res.status).toBe(429);
    expect(res.body.error).toMatchObject({ code: 'rate_limit_exceeded', type: 'rate_limit_error' });
    expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(60);
  });

  describeInProcess('windows', 'moves the injected clock', () => {
    it('counts down X-RateLimit-Remaining, reports seconds until the window resets, and accepts again after it', async () => {
      const { key } = await createKey(app, { rpm_limit: 2 });
      const first = await generate(key);
      expect(first.headers).toMatchObject({
        'x-ratelimit-limit': '2',
        'x-ratelimit-remaining': '1',
        'x-ratelimit-reset': '60',
      });
      app.clock.advance(45_000);
      expect((await generate(key)).headers).toMatchObject({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '15' });
      const limited = await generate(key);
      expect(limited.status).toBe(429);
      expect(limited.headers).toMatchObject({
        'retry-after': '15',
        'x-ratelimit-limit': '2',
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': '15',
      });
      app.clock.advance(14_999);
      expect((await generate(key)).status).toBe(429);
      app.clock.advance(1);
      const again = await generate(key);
      expect(again.status).toBe(200);
      expect(again.headers).toMatchObject({ 'x-ratelimit-remaining': '1', 'x-ratelimit-reset': '60' });
    });

    it('keys without rpm_limit get DEFAULT_RPM', async () => {
      const small = await startTestApp({ env: { DEFAULT_RPM: '2' } });
      try {
        const { key } = await createKey(small);
        const ok = await small.http().get('/v1/models').set('X-API-Key', key);
        expect(ok.headers['x-ratelimit-limit']).toBe('2');
        expect((await small.http().get('/v1/models').set('X-API-Key', key)).status).toBe(200);
        expect((await small.http().get('/v1/models').set('X-API-Key', key)).status).toBe(429);
      } finally {
        await small.close();
      }
    }, 30_000);

    it('every authenticated /v1/* request counts: GET /v1/models and rejected requests too; keys are independent', async () => {
      const { key } = await createKey(app, { rpm_limit: 4 });
      const other = await createKey(app, { rpm_limit: 4 });
      expect((await app.http().get('/v1/models').set('X-API-Key', key)).status).toBe(200);
      expect((await generate(key, { prompt: 5 })).status).toBe(400);
      expect((await generate(key, { prompt: 'p', model: 'nope' })).status).toBe(404);
      expect((await generate(key, { prompt: '[mock:error] p' })).status).toBe(502);
      expect((await app.http().get('/v1/models').set('X-API-Key', key)).status).toBe(429);
      expect((await generate(other.key)).headers['x-ratelimit-remaining']).toBe('3');
    });

    it('X-RateLimit-* are on every authenticated /v1/* response, errors included, and on no other', async () => {
      const { key } = await createKey(app, { rpm_limit: 50 });
      const exhausted = await createKey(app, { rpm_limit: 50, monthly_quota: 0 });
      const restricted = await createKey(app, { rpm_limit: 50, models: ['mock-b'] });
      const responses = [
        await generate(key),
        await generate(key, { prompt: 'p', stream: true }),
        await app.http().get('/v1/models').set('X-API-Key', key),
        await generate(key, { prompt: 'p', temperature: 7 }),
        await app
          .http()
          .post('/v1/generate')
          .set('X-API-Key', key)
          .set('Content-Type', 'application/json')
          .send('{nope'),
        await generate(key, { prompt: 'p', model: 'nope' }),
        await generate(restricted.key, { prompt: 'p', model: 'mock-a' }),
        await generate(exhausted.key),
        await generate(key, { prompt: '[mock:error] p' }),
        await generate(key, { prompt: '[mock:unreachable] p' }),
      ];
      expect(responses.map((res) => res.status)).toEqual([200, 200, 200, 400, 400, 404, 403, 402, 502, 503]);
      for (const res of responses) {
        expect(res.headers).toEqual(
          expect.objectContaining({
            'x-ratelimit-limit': '50',
            'x-ratelimit-remaining': expect.stringMatching(/^\d+$/),
            'x-ratelimit-reset': '60',
          }),
        );
      }
      const unauthenticated = await app.http().post('/v1/generate').send({ prompt: 'p' });
      const admin = await app
        .http()
        .get('/admin/keys')
        .set(...adminAuth());
      for (const res of [unauthenticated, admin]) expect(res.headers['x-ratelimit-limit']).toBeUndefined();
    });

    it('a changed rpm_limit applies at once', async () => {
      const { key, id } = await createKey(app, { rpm_limit: 1 });
      expect((await generate(key)).status).toBe(200);
      expect((await generate(key)).status).toBe(429);
      await app
        .http()
        .patch(`/admin/keys/${id}`)
        .set(...adminAuth())
        .send({ rpm_limit: 3 })
        .expect(200);
      const res = await generate(key);
      expect(res.status).toBe(200);
      expect(res.headers['x-ratelimit-limit']).toBe('3');
    });
  });
});

describeInProcess('rate limits (TPM)', 'moves the injected clock', () => {
  it('tokens are charged after a generation and checked before the next: over tpm_limit is 429 until the window resets', async () => {
    const { key } = await createKey(app, { ...NO_RPM, tpm_limit: 30 });
    const { prompt, tokens } = echo(9); // 19 tokens
    const first = await generate(key, { prompt });
    expect(first.body.usage.total_tokens).toBe(tokens);
    expect((await generate(key, { prompt })).status).toBe(200); // 19 < 30 before it; 38 after
    const limited = await generate(key, { prompt });
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('rate_limit_exceeded');
    expect(limited.body.error.message).toMatch(/tokens per minute/);
    expect(limited.headers['retry-after']).toBe('60');
    app.clock.advance(60_000);
    expect((await generate(key, { prompt })).status).toBe(200);
  });

  it('keys without tpm_limit are not limited by tokens', async () => {
    const { key } = await createKey(app, NO_RPM);
    for (let i = 0; i < 5; i += 1) expect((await generate(key, { prompt: echo(30).prompt })).status).toBe(200);
  });
});

describe('quotas', () => {
  it('generations consume quota; an exhausted quota is 402 quota_exhausted naming the reset time', async () => {
    const { key, id } = await createKey(app, { ...NO_RPM, monthly_quota: 2 });
    expect((await generate(key)).status).toBe(200);
    expect((await generate(key)).status).toBe(200);
    const res = await generate(key);
    expect(res.status).toBe(402);
    expect(res.body.error).toMatchObject({ code: 'quota_exhausted', type: 'quota_error' });
    const { usage } = await keyView(id);
    expect(res.body.error.message).toContain(usage.quota_reset_at);
    expect(usage.requests).toBe(2);
  });

  describeInProcess('periods and headers', 'moves the injected clock', () => {
    it('X-Quota-Limit / -Remaining / -Reset on responses of keys with a quota, none without', async () => {
      const { key } = await createKey(app, { ...NO_RPM, monthly_quota: 2 });
      const first = await generate(key);
      expect(first.headers).toMatchObject({
        'x-quota-limit': '2',
        'x-quota-remaining': '1',
        'x-quota-reset': '2026-12-01T00:00:00.000Z',
      });
      const streamed = await generate(key, { prompt: 'p', stream: true });
      expect(streamed.headers).toMatchObject({ 'x-quota-remaining': '0' });
      const refused = await generate(key);
      expect(refused.headers).toMatchObject({
        'x-quota-limit': '2',
        'x-quota-remaining': '0',
        'x-quota-reset': '2026-12-01T00:00:00.000Z',
      });
      expect(refused.body.error.message).toContain('2026-12-01T00:00:00.000Z');
      const unlimited = await createKey(app, NO_RPM);
      expect(Object.keys((await generate(unlimited.key)).headers).filter((name) => name.startsWith('x-quota'))).toEqual(
        [],
      );
    });

    it('the monthly reset is respected: at quota_reset_at a new period starts with zero usage', async () => {
      const { key, id } = await createKey(app, { ...NO_RPM, monthly_quota: 1 });
      expect((await generate(key)).status).toBe(200);
      app.clock.set('2026-11-30T23:59:59.999Z');
      expect((await generate(key)).status).toBe(402);
      app.clock.set('2026-12-01T00:00:00.000Z');
      const next = await generate(key);
      expect(next.status).toBe(200);
      expect(next.headers['x-quota-reset']).toBe('2027-01-01T00:00:00.000Z');
      const view = await keyView(id);
      expect(view.usage).toEqual({
        requests: 1,
        tokens: next.body.usage.total_tokens,
        cost: 0,
        quota_reset_at: '2027-01-01T00:00:00.000Z',
      });
      expect(view.quota_reset_at).toBe('2027-01-01T00:00:00.000Z');
      expect((await generate(key)).status).toBe(402);
    });

    it('the admin view shows a period that ended as fresh before any request rolls it over', async () => {
      const { key, id } = await createKey(app, { ...NO_RPM, monthly_quota: 5 });
      await generate(key);
      app.clock.set('2026-12-03T00:00:00.000Z');
      expect((await keyView(id)).usage).toEqual({
        requests: 0,
        tokens: 0,
        cost: 0,
        quota_reset_at: '2027-01-01T00:00:00.000Z',
      });
    });
  });

  itWithMockModels('failed generations are free: 502, 503 and 504 give the unit back', async () => {
    const { key, id } = await createKey(app, { ...NO_RPM, monthly_quota: 1 });
    const failed = await generate(key, { prompt: '[mock:error] p' });
    expect(failed.status).toBe(502);
    expect(failed.headers['x-quota-remaining']).toBe('1'); // the unit is back
    expect((await generate(key, { prompt: '[mock:unreachable] p' })).status).toBe(503);
    expect((await generate(key, { prompt: '[mock:hang] p', model: 'mock-timeout' })).status).toBe(504);
    expect((await generate(key, { prompt: '[mock:error] p', stream: true })).status).toBe(502);
    expect((await keyView(id)).usage.requests).toBe(0);
    expect((await generate(key)).status).toBe(200);
    expect((await generate(key)).status).toBe(402);
  });

  itWithMockModels('requests refused before the quota step (400, 404, 403) use no quota', async () => {
    const { key, id } = await createKey(app, { ...NO_RPM, monthly_quota: 1, models: ['mock-a'] });
    expect((await generate(key, { prompt: '' })).status).toBe(400);
    expect((await generate(key, { prompt: 'p', model: 'nope' })).status).toBe(404);
    expect((await generate(key, { prompt: 'p', model: 'mock-b' })).status).toBe(403);
    expect((await keyView(id)).usage.requests).toBe(0);
    expect((await generate(key)).status).toBe(200);
  });

  it('tokens are charged with the real usage, streams included', async () => {
    const { key, id } = await createKey(app, NO_RPM);
    const plain = await generate(key, { prompt: 'count my tokens' });
    const streamed = await generate(key, { prompt: 'count these too', stream: true });
    const final = sseEvents(streamed.text).at(-2) as { usage: { total_tokens: number } };
    expect((await keyView(id)).usage).toMatchObject({
      requests: 2,
      tokens: plain.body.usage.total_tokens + final.usage.total_tokens,
    });
  });

  itWithMockModels(
    'an exhausted token quota is 402 (checked before, charged after: the last request may overshoot)',
    async () => {
      const { key, id } = await createKey(app, { ...NO_RPM, monthly_token_quota: 30 });
      const { prompt, tokens } = echo(9); // 19 tokens
      const first = await generate(key, { prompt });
      expect(first.headers).toMatchObject({
        'x-quota-limit': '30',
        'x-quota-remaining': '30',
        'x-quota-tokens-limit': '30',
      });
      expect((await generate(key, { prompt })).headers['x-quota-tokens-remaining']).toBe(String(30 - tokens));
      const refused = await generate(key, { prompt });
      expect(refused.status).toBe(402);
      expect(refused.body.error.message).toMatch(/token quota of 30/);
      expect((await keyView(id)).usage.tokens).toBe(2 * tokens);
    },
  );
});

describeInProcess('an upstream that reports no usage', 'starts its own fake upstream', () => {
  let upstream: FakeVllm;
  let gateway: TestApp;
  beforeAll(async () => {
    upstream = await FakeVllm.start();
    upstream.streamUsage = false; // a server that ignores stream_options.include_usage
    gateway = await startTestApp({
      modelsYaml: `default_model: plain\nmodels:\n  - name: plain\n    provider: openai\n    upstream_model: m\n    base_url: ${upstream.url}\n`,
    });
  }, 30_000);
  afterAll(async () => {
    await gateway.close();
    await upstream.close();
  });

  it('a stream it ends without a usage chunk is billed its prompt and completion, never 0 prompt tokens', async () => {
    const { key, id } = await createKey(gateway, { ...NO_RPM, monthly_token_quota: 1_000_000 });
    const prompt = Array.from({ length: 100 }, (_, i) => `word${i}`).join(' ');
    const body = { prompt, max_new_tokens: 8 };
    const send = (extra: Record<string, unknown>) =>
      gateway
        .http()
        .post('/v1/generate')
        .set('X-API-Key', key)
        .set('Cache-Control', 'no-store')
        .send({ ...body, ...extra });
    const plain = await send({});
    const streamed = await send({ stream: true });
    const final = sseEvents(streamed.text).at(-2) as { usage: { prompt_tokens: number; completion_tokens: number } };
    // The upstream counted 100 prompt tokens for the JSON answer; the stream reported none, and the
    // gateway counts the prompt's words: the same 100, not 0.
    expect(plain.body.usage.prompt_tokens).toBe(100);
    expect(final.usage.prompt_tokens).toBe(100);
    expect(final.usage.completion_tokens).toBe(plain.body.usage.completion_tokens);
    const view = await gateway
      .http()
      .get(`/admin/keys/${id}`)
      .set(...adminAuth());
    expect(view.body.usage.tokens).toBe(
      plain.body.usage.total_tokens + final.usage.prompt_tokens + final.usage.completion_tokens,
    );
  });
});

describeInProcess('client disconnects', 'cuts raw connections to the in-process server', () => {
  let baseUrl: string;
  beforeAll(async () => {
    baseUrl = await listenOnLoopback(app);
  });

  /** Starts a POST /v1/generate; counts the SSE deltas received; `cut()` destroys the connection. */
  function open(key: string, body: Record<string, unknown>) {
    let deltas = 0;
    const req = httpRequest(`${baseUrl}/v1/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key },
    });
    req.on('error', () => undefined);
    req.on('response', (res) =>
      res.on('data', (chunk: Buffer) => (deltas += (chunk.toString().match(/"delta"/g) ?? []).length)),
    );
    req.end(JSON.stringify(body));
    return { deltas: () => deltas, cut: () => req.destroy() };
  }

  async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await condition())) {
      if (Date.now() > deadline) throw new Error('condition not met in time');
      await sleep(10);
    }
  }

  it('a stream cut by the client is charged for what was produced, never more', async () => {
    const { key, id } = await createKey(app, NO_RPM);
    const prompt = '[mock:slow:150] a long story please';
    const full = mockCompletion(generationParams({ prompt, maxNewTokens: 64, temperature: 1, topP: 1, topK: 0 }));
    expect(full.usage.completionTokens).toBeGreaterThan(6);
    const stream = open(key, { prompt, stream: true, max_new_tokens: 64 });
    await waitUntil(() => stream.deltas() >= 3);
    stream.cut();
    await eventually(async () => expect(await ledger(id)).toHaveLength(1));
    const [row] = await ledger(id);
    expect(row).toMatchObject({ requests: 1, prompt_tokens: 5 });
    expect(row.completion_tokens).toBeGreaterThanOrEqual(3);
    expect(row.completion_tokens).toBeLessThan(full.usage.completionTokens);
    expect((await keyView(id)).usage).toEqual(
      expect.objectContaining({ requests: 1, tokens: 5 + (row.completion_tokens as number) }),
    );
  });

  it.each([
    ['streamed', true],
    ['not streamed', false],
  ])(
    'a client that leaves after the backend accepted the request, before any output (%s), pays the unit and the prompt',
    async (_label, streamed) => {
      const { key, id } = await createKey(app, { ...NO_RPM, monthly_quota: 2 });
      const pending = open(key, { prompt: '[mock:hang] three more words', stream: streamed });
      await waitUntil(async () => (await keyView(id)).usage.requests === 1); // reserved, backend hanging
      pending.cut();
      await eventually(async () => expect(await ledger(id)).toHaveLength(1));
      expect(await ledger(id)).toEqual([
        expect.objectContaining({ requests: 1, cached_requests: 0, prompt_tokens: 4, completion_tokens: 0 }),
      ]);
      expect((await keyView(id)).usage).toMatchObject({ requests: 1, tokens: 4 });
    },
  );

  it('the starter of a shared generation leaves: the sharer that joined first pays it in full, the other a unit', async () => {
    const starter = await createKey(app, { ...NO_RPM, monthly_quota: 5 });
    const second = await createKey(app, { ...NO_RPM, monthly_quota: 5 });
    const third = await createKey(app, { ...NO_RPM, monthly_quota: 5 });
    const body = { prompt: '[mock:slow:60] shared story', stream: true, max_new_tokens: 64 };
    const first = open(starter.key, body);
    await waitUntil(() => first.deltas() >= 1);
    // .then() sends at once (supertest sends only when awaited).
    const joined = [second, third].map((k) =>
      app
        .http()
        .post('/v1/generate')
        .set('X-API-Key', k.key)
        .send({ ...body, stream: false })
        .then((res) => res),
    );
    // Both have reserved their unit, the step right before joining the running generation.
    await waitUntil(async () => (await keyView(second.id)).usage.requests === 1);
    await waitUntil(async () => (await keyView(third.id)).usage.requests === 1);
    await sleep(50);
    first.cut();
    const responses = await Promise.all(joined);
    // The two sharers were sent together, so which joined first (and pays) is theirs to race for.
    const payerIndex = responses.findIndex((res) => res.body.cached === false);
    expect(payerIndex).toBeGreaterThanOrEqual(0);
    const paying = responses[payerIndex];
    const sharing = responses[1 - payerIndex];
    const [payingKey, sharingKey] = payerIndex === 0 ? [second, third] : [third, second];
    const full = mockCompletion(generationParams({ prompt: body.prompt, maxNewTokens: 64 }));
    expect(paying.status).toBe(200);
    expect(paying.body).toMatchObject({
      cached: false,
      output: full.output,
      usage: { prompt_tokens: full.usage.promptTokens, completion_tokens: full.usage.completionTokens },
    });
    expect(sharing.status).toBe(200);
    expect(sharing.body).toMatchObject({ cached: true, output: full.output, usage: { total_tokens: 0 } });
    // The starter received output and left: one unit, no tokens (the generation is paid by the sharer).
    for (const k of [starter, payingKey, sharingKey]) {
      await eventually(async () => expect(await ledger(k.id)).toHaveLength(1));
    }
    expect(await ledger(starter.id)).toEqual([
      expect.objectContaining({ requests: 1, cached_requests: 1, prompt_tokens: 0, completion_tokens: 0 }),
    ]);
    expect(await ledger(payingKey.id)).toEqual([
      expect.objectContaining({
        requests: 1,
        cached_requests: 0,
        prompt_tokens: full.usage.promptTokens,
        completion_tokens: full.usage.completionTokens,
      }),
    ]);
    expect(await ledger(sharingKey.id)).toEqual([
      expect.objectContaining({ requests: 1, cached_requests: 1, prompt_tokens: 0, completion_tokens: 0 }),
    ]);
  });
});

describeInProcess('what a generation that does not end normally costs', 'uses the mock models', () => {
  it('the backend fails before any output: free, the unit is given back', async () => {
    const { key, id } = await createKey(app, { ...NO_RPM, monthly_quota: 1 });
    for (const stream of [false, true]) {
      const res = await generate(key, { prompt: '[mock:error] p', stream });
      expect(res.status).toBe(502); // before the first byte: an ordinary JSON error, streamed or not
      expect(res.body).toMatchObject({ error: { code: 'backend_error' } });
    }
    expect((await keyView(id)).usage).toMatchObject({ requests: 0, tokens: 0 });
    expect(await ledger(id)).toEqual([]);
  });

  it('the backend breaks after output: the unit, the prompt and the tokens produced up to the break', async () => {
    const { key, id } = await createKey(app, { ...NO_RPM, monthly_quota: 5 });
    const res = await generate(key, { prompt: '[mock:fail-after:3] four words here', stream: true });
    const events = sseEvents(res.text);
    expect(events.filter((e) => (e as { delta?: string }).delta !== undefined)).toHaveLength(3);
    expect(events.at(-2)).toMatchObject({ error: { code: 'backend_error' } });
    expect(await ledger(id)).toEqual([
      expect.objectContaining({ requests: 1, prompt_tokens: 4, completion_tokens: 3 }),
    ]);
    expect((await keyView(id)).usage).toMatchObject({ requests: 1, tokens: 7 });
  });

  it('a stream that runs into timeout_ms is charged for what it produced, not streamed for free', async () => {
    const { key, id } = await createKey(app, { ...NO_RPM, monthly_quota: 5 });
    const res = await generate(key, { prompt: '[mock:slow:80] go', model: 'mock-timeout', stream: true });
    const events = sseEvents(res.text);
    const deltas = events.filter((e) => (e as { delta?: string }).delta !== undefined).length;
    expect(deltas).toBeGreaterThanOrEqual(1);
    expect(events.at(-2)).toMatchObject({ error: { code: 'backend_timeout' } });
    expect(await ledger(id)).toEqual([
      expect.objectContaining({ model: 'mock-timeout', requests: 1, prompt_tokens: 2, completion_tokens: deltas }),
    ]);
  });

  it('a non-streamed request that times out got no output: free', async () => {
    const { key, id } = await createKey(app, { ...NO_RPM, monthly_quota: 1 });
    expect((await generate(key, { prompt: '[mock:slow:80] go', model: 'mock-timeout' })).status).toBe(504);
    expect((await keyView(id)).usage.requests).toBe(0);
    expect(await ledger(id)).toEqual([]);
  });
});

describe('usage ledger', () => {
  itWithMockModels(
    'aggregates per key, UTC day and model: requests, cached requests, prompt and completion tokens',
    async () => {
      const { key, id } = await createKey(app, NO_RPM);
      const a1 = await generate(key, { prompt: 'first on a' });
      const a2 = await generate(key, { prompt: 'second on a', stream: true });
      const b1 = await generate(key, { prompt: 'one on b', model: 'mock-b' });
      await generate(key, { prompt: '[mock:error] failed, not counted' });
      const a2Final = sseEvents(a2.text).at(-2) as typeof a1.body;
      const rows = await ledger(id);
      const today = app.clock.now().toISOString().slice(0, 10);
      expect(rows).toEqual([
        {
          date: today,
          model: 'mock-a',
          requests: 2,
          cached_requests: 0,
          prompt_tokens: a1.body.usage.prompt_tokens + a2Final.usage.prompt_tokens,
          completion_tokens: a1.body.usage.completion_tokens + a2Final.usage.completion_tokens,
          cost: 0, // the fixture models have no prices
        },
        {
          date: today,
          model: 'mock-b',
          requests: 1,
          cached_requests: 0,
          prompt_tokens: b1.body.usage.prompt_tokens,
          completion_tokens: b1.body.usage.completion_tokens,
          cost: 0,
        },
      ]);
    },
  );

  describeInProcess('days and cache hits', 'moves the injected clock and uses the accounting service', () => {
    it('a new UTC day starts a new row', async () => {
      const { key, id } = await createKey(app, NO_RPM);
      app.clock.set('2026-11-24T23:59:59.000Z');
      await generate(key);
      app.clock.set('2026-11-25T00:00:00.000Z');
      await generate(key);
      await generate(key);
      expect((await ledger(id)).map((row) => [row.date, row.requests])).toEqual([
        ['2026-11-24', 1],
        ['2026-11-25', 2],
      ]);
    });

    it('keys without a quota cost no database statement on the request path; the ledger counts them', async () => {
      const own = await startTestApp({
        override: (builder) => builder.overrideProvider(LEDGER_FLUSH_INTERVAL_MS).useValue(0),
      });
      try {
        const { key, id } = await createKey(own, NO_RPM);
        const send = () => own.http().post('/v1/generate').set('X-API-Key', key).set('Cache-Control', 'no-store');
        expect((await send().send({ prompt: 'warm the key cache' })).status).toBe(200);
        const statements = jest.spyOn(own.app!.get(Database), 'run');
        for (let i = 0; i < 5; i += 1) expect((await send().send({ prompt: `p ${i}` })).status).toBe(200);
        expect(statements).not.toHaveBeenCalled();
        statements.mockRestore();
        const res = await own
          .http()
          .get(`/admin/keys/${id}/usage`)
          .set(...adminAuth());
        expect(res.body.data).toEqual([expect.objectContaining({ requests: 6 })]);
      } finally {
        await own.close();
      }
    });

    it('pending sums are written at shutdown, after the last request and before the database closes', async () => {
      const own = await startTestApp({
        override: (builder) => builder.overrideProvider(LEDGER_FLUSH_INTERVAL_MS).useValue(0),
      });
      const db = own.app!.get(Database);
      const run = db.run.bind(db);
      const writes: string[] = [];
      jest.spyOn(db, 'run').mockImplementation(async (sql: string, params: unknown[]) => {
        const ledgerWrite = /INSERT INTO key_usage_daily/.test(sql);
        try {
          const result = await run(sql, params);
          if (ledgerWrite) writes.push('written');
          return result;
        } catch (error) {
          if (ledgerWrite) writes.push('failed');
          throw error;
        }
      });
      const { key } = await createKey(own, NO_RPM);
      expect((await own.http().post('/v1/generate').set('X-API-Key', key).send({ prompt: 'p' })).status).toBe(200);
      expect(writes).toEqual([]); // no timer, no write on the request path
      await own.close();
      expect(writes).toEqual(['written']);
    }, 30_000);

    it('a cache-hit charge uses one request unit and no tokens, and counts a cached request', async () => {
      const { key, id } = await createKey(app, { ...NO_RPM, monthly_quota: 5, tpm_limit: 1 });
      const accounting = app.app!.get(UsageAccounting);
      const apiKey = {
        id,
        name: 'k',
        rpmLimit: null,
        tpmLimit: 1,
        monthlyQuota: 5,
        monthlyTokenQuota: null,
        models: null,
        active: true,
        expiresAt: null,
        revokedAt: null,
        maxConcurrent: null,
        priority: 'normal' as const,
        weight: 1,
        monthlyBudget: null,
        team: null,
      };
      const usage = await accounting.begin(apiKey, 'mock-a');
      await usage.settle(CACHE_HIT);
      await usage.settle(FREE); // after a charge: no effect
      expect((await keyView(id)).usage).toMatchObject({ requests: 1, tokens: 0 });
      expect(await ledger(id)).toEqual([
        expect.objectContaining({ requests: 1, cached_requests: 1, prompt_tokens: 0, completion_tokens: 0 }),
      ]);
      expect((await generate(key)).status).toBe(200); // no tokens charged to the TPM window either
    });
  });
});

describe('order of checks', () => {
  it('authentication (401) before the rate limit: the rate-limit guard runs after the key guard', async () => {
    const { key } = await createKey(app, { rpm_limit: 1 });
    await awaitRoomInMinuteWindow();
    expect((await generate(key)).status).toBe(200);
    // Limited by the authenticated key: only possible when the key guard ran first.
    expect((await generate(key)).status).toBe(429);
    for (const res of [
      await app.http().post('/v1/generate').send({ prompt: 'p' }),
      await app.http().post('/v1/generate').set('X-API-Key', `${key}x`).send({ prompt: 'p' }),
    ]) {
      expect(res.status).toBe(401);
      expect(res.headers['x-ratelimit-limit']).toBeUndefined();
    }
  });

  it('rate limit (429) before validation (400)', async () => {
    const { key } = await createKey(app, { rpm_limit: 1 });
    await awaitRoomInMinuteWindow();
    await generate(key);
    expect((await generate(key, { prompt: 5, bogus: true })).status).toBe(429);
    const malformed = await app
      .http()
      .post('/v1/generate')
      .set('X-API-Key', key)
      .set('Content-Type', 'application/json')
      .send('{nope');
    expect(malformed.status).toBe(429);
  });

  itWithMockModels('validation (400) and model (404/403) before quota (402); quota before the backend', async () => {
    const { key } = await createKey(app, { ...NO_RPM, monthly_quota: 0, models: ['mock-a'] });
    expect((await generate(key, { prompt: 'p', temperature: 9 })).status).toBe(400);
    expect((await generate(key, { prompt: 'p', model: 'nope' })).status).toBe(404);
    expect((await generate(key, { prompt: 'p', model: 'mock-b' })).status).toBe(403);
    expect((await generate(key, { prompt: '[mock:error] p' })).status).toBe(402);
    expect((await generate(key, { prompt: 'p', stream: true })).status).toBe(402);
  });
});
