/**
 * /v1/responses and /v1/messages go through the chat pipeline: per endpoint, the rate limit
 * (429), the request quota (402), TPM, the usage ledger and the quota's token count equal the
 * usage the answer reports; a stream cut by the client is billed for what was produced (API.md
 * "Quotas"); a Responses or Messages request shares the cache entry of the chat request it
 * becomes; cached prompt tokens a backend reports show in chat, Responses and Messages usage
 * and in llm_tokens_total{type="cached_prompt"}.
 */
import type { TestApp } from './harness/app';
import { describeInProcess } from './harness/environment';
import { eventually } from './harness/eventually';
import { type FakeBackendsApp, startWithFakeBackends } from './harness/fake-backends-app';
import { adminAuth, createKey } from './harness/keys';
import { openPost } from './harness/listen';
import { parseExposition, sampleValue } from './harness/prometheus';
import type { FakeVllm } from './fakes/fake-vllm';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A request body per API whose last user message is `text`, and the usage it reports. */
interface Api {
  path: string;
  body: (text: string, extra?: Record<string, unknown>) => Record<string, unknown>;
  tokens: (body: Record<string, unknown>) => { prompt: number; completion: number; cached: number };
  /** The status's error type as this API's clients read it. */
  errorType: (body: Record<string, unknown>) => unknown;
}

const APIS: Record<string, Api> = {
  responses: {
    path: '/v1/responses',
    body: (text, extra = {}) => ({ model: 'mock', input: text, store: false, max_output_tokens: 32, ...extra }),
    tokens: (body) => {
      const usage = body.usage as {
        input_tokens: number;
        output_tokens: number;
        input_tokens_details: { cached_tokens: number };
      };
      return {
        prompt: usage.input_tokens,
        completion: usage.output_tokens,
        cached: usage.input_tokens_details.cached_tokens,
      };
    },
    errorType: (body) => (body.error as { code: string }).code,
  },
  messages: {
    path: '/v1/messages',
    body: (text, extra = {}) => ({
      model: 'mock',
      max_tokens: 32,
      messages: [{ role: 'user', content: text }],
      ...extra,
    }),
    tokens: (body) => {
      const usage = body.usage as { input_tokens: number; output_tokens: number; cache_read_input_tokens: number };
      return {
        prompt: usage.input_tokens + usage.cache_read_input_tokens,
        completion: usage.output_tokens,
        cached: usage.cache_read_input_tokens,
      };
    },
    errorType: (body) => (body.error as { code: string }).code,
  },
};

describeInProcess('Responses and Messages: limits, billing, cache', 'reads the ledger and moves the clock', () => {
  let backends: FakeBackendsApp;
  let app: TestApp;
  let vllm: FakeVllm;
  let baseUrl: string;

  beforeAll(async () => {
    // `priced`: output 1 per token (64 at most: a budget of 100 fits the lowered limit, never
    // 32,000 tokens); `vllm-priced`: input 1, cached input 0.5 per token.
    backends = await startWithFakeBackends({
      extraYaml: ({ vllm: url }) => `  - name: priced
    provider: mock
    max_new_tokens: 64
    pricing: { input: 0, output: 1000000 }
  - name: vllm-priced
    provider: vllm
    upstream_model: org/llama
    base_url: ${url}
    pricing: { input: 1000000, output: 0, cached_input: 500000 }
`,
    });
    ({ app, vllm, baseUrl } = backends);
  });
  afterAll(() => backends.close());
  beforeEach(() => vllm.reset());

  const post = (key: string, path: string, body: Record<string, unknown>, cache = 'no-store') =>
    app.http().post(path).set('Authorization', `Bearer ${key}`).set('Cache-Control', cache).send(body);

  async function keyUsage(id: string): Promise<{ requests: number; tokens: number }> {
    const res = await app
      .http()
      .get(`/admin/keys/${id}`)
      .set(...adminAuth());
    return res.body.usage;
  }

  async function ledger(id: string): Promise<Record<string, number>[]> {
    const res = await app
      .http()
      .get(`/admin/keys/${id}/usage`)
      .query({ from: '2026-01-01', to: '2027-12-31' })
      .set(...adminAuth());
    return res.body.data;
  }

  describe.each(Object.entries(APIS))('%s', (_name, api) => {
    it('counts toward the key RPM: past it, 429 rate_limit_exceeded with Retry-After', async () => {
      const { key } = await createKey(app, { rpm_limit: 2 });
      expect((await post(key, api.path, api.body('one'))).status).toBe(200);
      expect((await post(key, api.path, api.body('two'))).status).toBe(200);
      const third = await post(key, api.path, api.body('three'));
      expect(third.status).toBe(429);
      expect(api.errorType(third.body)).toBe('rate_limit_exceeded');
      expect(Number(third.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    });

    it('uses the request quota: past it, 402 quota_exhausted; the quota and the ledger count the reported usage', async () => {
      const { key, id } = await createKey(app, { rpm_limit: 1000, monthly_quota: 2 });
      const first = await post(key, api.path, api.body('[mock:echo] alpha beta gamma'));
      const second = await post(key, api.path, api.body('[mock:echo] delta epsilon', { stream: false }));
      expect([first.status, second.status]).toEqual([200, 200]);
      const third = await post(key, api.path, api.body('over'));
      expect(third.status).toBe(402);
      expect(api.errorType(third.body)).toBe('quota_exhausted');
      const [a, b] = [api.tokens(first.body), api.tokens(second.body)];
      const tokens = a.prompt + a.completion + b.prompt + b.completion;
      expect(await keyUsage(id)).toMatchObject({ requests: 2, tokens });
      await eventually(async () =>
        expect(await ledger(id)).toEqual([
          expect.objectContaining({
            model: 'mock',
            requests: 2,
            prompt_tokens: a.prompt + b.prompt,
            completion_tokens: a.completion + b.completion,
          }),
        ]),
      );
    });

    it('charges TPM: a key over its tpm_limit gets 429 until the window resets', async () => {
      const { key } = await createKey(app, { rpm_limit: 1000, tpm_limit: 5 });
      expect((await post(key, api.path, api.body('[mock:echo] one two three four five six'))).status).toBe(200);
      const over = await post(key, api.path, api.body('again'));
      expect(over.status).toBe(429);
      app.clock.advance(60_000);
      expect((await post(key, api.path, api.body('later'))).status).toBe(200);
    });

    it('a stream cut by the client is charged the prompt and what was produced, never the whole answer', async () => {
      const { key, id } = await createKey(app, { rpm_limit: 1000 });
      const cut = openPost(
        baseUrl,
        api.path,
        { Authorization: `Bearer ${key}`, 'Cache-Control': 'no-store' },
        api.body('[mock:slow:100] a long story please', { stream: true, max_output_tokens: undefined }),
      );
      await sleep(450);
      cut.cut();
      await eventually(async () => expect(await ledger(id)).toHaveLength(1));
      const [row] = await ledger(id);
      // The prompt's words: the gateway's count of a cut stream (the mock counts words too).
      expect(row).toMatchObject({ requests: 1, prompt_tokens: 5 });
      expect(row.completion_tokens).toBeGreaterThanOrEqual(1);
      expect(row.completion_tokens).toBeLessThan(32);
    });

    it('shares the cache entry of the chat request it becomes', async () => {
      const { key } = await createKey(app, { rpm_limit: 1000 });
      const text = `cache me ${api.path}`;
      const chat = await post(
        key,
        '/v1/chat/completions',
        { model: 'mock', messages: [{ role: 'user', content: text }], max_tokens: 32 },
        'no-cache',
      );
      expect(chat.body.cached).toBe(false);
      const hit = await post(key, api.path, api.body(text), '');
      expect(hit.status).toBe(200);
      expect(hit.body.cached).toBe(true);
      expect(api.tokens(hit.body)).toEqual({ prompt: 0, completion: 0, cached: 0 });
    });

    it('an output limit above the model max is lowered, and the quota is reserved and charged with it', async () => {
      const { key, id } = await createKey(app, { rpm_limit: 1000, monthly_token_quota: 10_000 });
      const body =
        api.path === '/v1/messages'
          ? api.body('[mock:echo] short', { max_tokens: 32_000 })
          : api.body('[mock:echo] short', { max_output_tokens: 32_000 });
      const res = await post(key, api.path, body);
      expect(res.status).toBe(200);
      const { prompt, completion } = api.tokens(res.body);
      expect(await keyUsage(id)).toMatchObject({ requests: 1, tokens: prompt + completion });
    });
  });

  it('cached prompt tokens the backend reports: chat, Responses and Messages usage, and the metric', async () => {
    const { key } = await createKey(app, { rpm_limit: 1000 });
    vllm.cachedPromptTokens = 2;
    const chat = await post(key, '/v1/chat/completions', {
      model: 'vllm-chat',
      messages: [{ role: 'user', content: 'one two three four' }],
    });
    expect(chat.body.usage.prompt_tokens_details).toEqual({ cached_tokens: 2 });
    const responses = await post(key, '/v1/responses', {
      model: 'vllm-chat',
      input: 'one two three four',
      store: false,
    });
    expect(responses.body.usage.input_tokens_details).toEqual({ cached_tokens: 2 });
    const streamed = await post(key, '/v1/messages', {
      model: 'vllm-chat',
      max_tokens: 16,
      stream: true,
      messages: [{ role: 'user', content: 'one two three four' }],
    });
    const delta = streamed.text
      .split('\n\n')
      .find((block) => block.startsWith('event: message_delta'))!
      .split('data: ')[1];
    const usage = (JSON.parse(delta) as { usage: Record<string, number> }).usage;
    expect(usage.cache_read_input_tokens).toBe(2);
    expect(usage.input_tokens).toBe(chat.body.usage.prompt_tokens - 2);
    const metrics = parseExposition((await app.http().get('/metrics')).text);
    expect(sampleValue(metrics, 'llm_tokens_total', { model: 'vllm-chat', type: 'cached_prompt' })).toBe(6);
  });

  it('Anthropic errors on /v1/messages keep the statuses: 402 billing_error, 429 rate_limit_error', async () => {
    const { key } = await createKey(app, { rpm_limit: 1, monthly_quota: 1 });
    await post(key, '/v1/messages', APIS.messages.body('once'));
    const limited = await post(key, '/v1/messages', APIS.messages.body('twice'));
    expect([limited.status, limited.body.type, limited.body.error.type]).toEqual([429, 'error', 'rate_limit_error']);
    app.clock.advance(60_000);
    const broke = await post(key, '/v1/messages', APIS.messages.body('thrice'));
    expect([broke.status, broke.body.error.type]).toEqual([402, 'billing_error']);
  });

  it.each([
    ['/v1/messages', { max_tokens: 32_000, messages: [{ role: 'user', content: '[mock:echo] a b c' }] }],
    ['/v1/responses', { max_output_tokens: 32_000, input: '[mock:echo] a b c', store: false }],
  ])('%s: a budget reserves the lowered output limit, not the one asked for', async (path, body) => {
    const { key, id } = await createKey(app, { rpm_limit: 1000, monthly_budget: 100 });
    const res = await post(key, path, { model: 'priced', ...body });
    expect(res.status).toBe(200);
    const view = await app
      .http()
      .get(`/admin/keys/${id}`)
      .set(...adminAuth());
    // The echo writes 3 words: 3 output tokens at 1 each (a reservation of 32,000 would be a 402).
    expect(view.body.usage).toMatchObject({ requests: 1, cost: 3 });
  });

  it('cached prompt tokens reported through /v1/messages cost the cached price', async () => {
    const { key, id } = await createKey(app, { rpm_limit: 1000 });
    vllm.cachedPromptTokens = 2;
    const res = await post(key, '/v1/messages', {
      model: 'vllm-priced',
      max_tokens: 8,
      messages: [{ role: 'user', content: 'one two three four' }],
    });
    const { input_tokens: fresh, cache_read_input_tokens: cached } = res.body.usage;
    expect(cached).toBe(2);
    const view = await app
      .http()
      .get(`/admin/keys/${id}`)
      .set(...adminAuth());
    expect(view.body.usage.cost).toBeCloseTo(fresh * 1 + cached * 0.5, 9);
  });
});
