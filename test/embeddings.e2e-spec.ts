/**
 * POST /v1/embeddings with the official `openai` client on the fake vLLM, the fake Ollama, the
 * embedded tiny model and the mock: a string and a batch, float and base64 (the SDK asks for
 * base64 by default and decodes it), and the gateway's guarantees on the new route: keys, RPM,
 * TPM (input tokens), quotas (one unit per call, tokens charged), the cache (on by default,
 * shared by both encodings), metrics; models.yaml `kind` and /v1/models; the error table.
 *
 * Wire formats of the fakes: vLLM's EmbeddingResponse (vllm/entrypoints/openai/protocol.py:
 * `data: [{index, object: "embedding", embedding}]`, `usage.prompt_tokens`); Ollama's
 * `POST /api/embed` (docs/api.md "Generate Embeddings": `{model, input}` →
 * `{embeddings: [[…]], prompt_eval_count}`). See test/fakes.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { APIError } from 'openai';
import { startTestApp, type TestApp } from './harness/app';
import { describeInProcess } from './harness/environment';
import { adminAuth, createKey } from './harness/keys';
import { listenOnLoopback } from './harness/listen';
import { parseExposition, sampleSum } from './harness/prometheus';
import { fakeEmbedding } from './fakes/fake-server';
import { FakeOllama } from './fakes/fake-ollama';
import { FakeVllm } from './fakes/fake-vllm';

const EMBEDDING_MODELS = ['vllm-embed', 'ollama-embed', 'tiny-embed', 'mock-embed'];

function cosine(a: number[], b: number[]): number {
  const dot = a.reduce((sum, x, i) => sum + x * b[i], 0);
  const norm = (v: number[]) => Math.sqrt(v.reduce((sum, x) => sum + x * x, 0));
  return dot / (norm(a) * norm(b));
}

describeInProcess('POST /v1/embeddings', 'points the openai SDK at the in-process server', () => {
  let app: TestApp;
  let vllm: FakeVllm;
  let ollama: FakeOllama;
  let baseURL: string;
  let key: string;

  const client = (apiKey = key) => new OpenAI({ apiKey, baseURL, maxRetries: 0, timeout: 30_000 });
  const noStore = { headers: { 'Cache-Control': 'no-store' } };

  beforeAll(async () => {
    [vllm, ollama] = await Promise.all([FakeVllm.start(), FakeOllama.start()]);
    const tinyPath = join(mkdtempSync(join(tmpdir(), 'llm-embed-')), 'tiny.gguf');
    app = await startTestApp({
      modelsYaml: `default_model: mock
models:
  - name: mock
    provider: mock
  - name: mock-embed
    kind: embedding
    provider: mock
  - name: vllm-embed
    kind: embedding
    provider: vllm
    upstream_model: BAAI/bge-small-en-v1.5
    base_url: ${vllm.url}
  - name: ollama-embed
    kind: embedding
    provider: ollama
    upstream_model: llama3:8b
    base_url: ${ollama.url}
  - name: tiny-embed
    kind: embedding
    provider: llama-cpp
    model_path: ${tinyPath}
    generate_if_missing: true
`,
    });
    baseURL = `${await listenOnLoopback(app)}/v1`;
    key = (await createKey(app, { rpm_limit: 100_000 })).key;
  });
  afterAll(async () => {
    await app.close();
    await Promise.all([vllm.close(), ollama.close()]);
  });
  beforeEach(() => {
    vllm.reset();
    ollama.reset();
  });

  describe.each(EMBEDDING_MODELS.map((model) => [model]))('%s', (model) => {
    it('embeddings.create for a string: one vector, OpenAI shape, prompt tokens as usage', async () => {
      const res = await client().embeddings.create({ model, input: 'the quick brown fox', encoding_format: 'float' });
      expect(res.object).toBe('list');
      expect(res.model).toBe(model);
      expect(res.data).toHaveLength(1);
      expect(res.data[0]).toMatchObject({ object: 'embedding', index: 0 });
      expect(res.data[0].embedding.length).toBeGreaterThan(0);
      for (const x of res.data[0].embedding) expect(Number.isFinite(x)).toBe(true);
      expect(res.usage.prompt_tokens).toBeGreaterThan(0);
      expect(res.usage.total_tokens).toBe(res.usage.prompt_tokens);
    });

    it('embeddings.create for a batch: one vector per input, in order; equal inputs, equal vectors', async () => {
      const input = ['first text', 'second text', 'first text'];
      const res = await client().embeddings.create({ model, input, encoding_format: 'float' }, noStore);
      expect(res.data.map((d) => d.index)).toEqual([0, 1, 2]);
      const [a, b, c] = res.data.map((d) => d.embedding);
      expect(a.length).toBe(b.length);
      expect(c).toEqual(a);
      expect(b).not.toEqual(a);
      const single = await client().embeddings.create({ model, input: 'second text', encoding_format: 'float' });
      expect(cosine(single.data[0].embedding, b)).toBeCloseTo(1, 5);
    });

    it('base64: the SDK asks for it by default and decodes it to the float vector', async () => {
      const floats = await client().embeddings.create({ model, input: 'base64 please', encoding_format: 'float' });
      const decoded = await client().embeddings.create({ model, input: 'base64 please' });
      const expected = floats.data[0].embedding;
      expect(decoded.data[0].embedding).toHaveLength(expected.length);
      decoded.data[0].embedding.forEach((x, i) => expect(x).toBeCloseTo(expected[i], 5));
    });
  });

  it('base64 on the wire is the little-endian float32 array', async () => {
    const res = await app
      .http()
      .post('/v1/embeddings')
      .set('Authorization', `Bearer ${key}`)
      .send({ model: 'vllm-embed', input: 'wire', encoding_format: 'base64' });
    expect(res.status).toBe(200);
    const bytes = Buffer.from(res.body.data[0].embedding as string, 'base64');
    const floats = Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
    const expected = fakeEmbedding('wire');
    expect(floats).toHaveLength(expected.length);
    floats.forEach((x, i) => expect(x).toBeCloseTo(expected[i], 6));
  });

  it('what reaches vLLM and Ollama: their own embedding endpoints and shapes; token ids pass to vLLM', async () => {
    await client().embeddings.create({ model: 'vllm-embed', input: [[1, 2, 3]], dimensions: 4 }, noStore);
    expect(vllm.requests.at(-1)).toMatchObject({
      path: '/v1/embeddings',
      body: { model: 'BAAI/bge-small-en-v1.5', input: [[1, 2, 3]], encoding_format: 'float', dimensions: 4 },
    });
    await client().embeddings.create({ model: 'ollama-embed', input: ['a b', 'c'] }, noStore);
    expect(ollama.requests.at(-1)).toMatchObject({
      path: '/api/embed',
      body: { model: 'llama3:8b', input: ['a b', 'c'] },
    });
  });

  it('/v1/models says which models embed', async () => {
    const models = (await client().models.list()).data as (OpenAI.Model & { kind: string })[];
    const kinds = Object.fromEntries(models.map((m) => [m.id, m.kind]));
    expect(kinds).toEqual({
      mock: 'chat',
      'mock-embed': 'embedding',
      'vllm-embed': 'embedding',
      'ollama-embed': 'embedding',
      'tiny-embed': 'embedding',
    });
  });

  it('embeddings are cached by default: float and base64 share one entry; a hit is billed no tokens', async () => {
    const input = ['cache this', 'and this'];
    const first = await client().embeddings.create({ model: 'vllm-embed', input, encoding_format: 'float' });
    const second = (await client().embeddings.create({
      model: 'vllm-embed',
      input,
    })) as OpenAI.CreateEmbeddingResponse & {
      cached?: boolean;
    };
    expect(second.cached).toBe(true);
    expect(second.usage.prompt_tokens).toBe(0);
    second.data.forEach((d, i) => d.embedding.forEach((x, j) => expect(x).toBeCloseTo(first.data[i].embedding[j], 5)));
    expect(vllm.requests).toHaveLength(1);
    await client().embeddings.create({ model: 'vllm-embed', input: ['cache this'] });
    await client().embeddings.create({ model: 'vllm-embed', input, dimensions: 4 });
    expect(vllm.requests).toHaveLength(3);
  });

  it('identical calls at the same time share one backend call (coalescing)', async () => {
    const before = parseExposition((await app.http().get('/metrics')).text);
    const input = '[mock:slow:300] shared by three';
    const results = await Promise.all(
      [1, 2, 3].map(() => client().embeddings.create({ model: 'mock-embed', input, encoding_format: 'float' })),
    );
    for (const res of results) expect(res.data[0].embedding).toEqual(results[0].data[0].embedding);
    const after = parseExposition((await app.http().get('/metrics')).text);
    const delta = (name: string, labels: Record<string, string>) =>
      sampleSum(after, name, labels) - sampleSum(before, name, labels);
    expect(delta('llm_requests_total', { model: 'mock-embed' })).toBe(1);
    expect(delta('llm_cache_requests_total', { model: 'mock-embed', result: 'coalesced' })).toBe(2);
  });

  it('quotas: one unit per call (cache hits too), input tokens charged; 402 when used up', async () => {
    const limited = await createKey(app, { monthly_quota: 2, monthly_token_quota: 1000 });
    await client(limited.key).embeddings.create(
      { model: 'mock-embed', input: 'one two three', encoding_format: 'float' },
      noStore,
    );
    await client(limited.key).embeddings.create(
      { model: 'mock-embed', input: ['four five'], encoding_format: 'float' },
      noStore,
    );
    const view = await app
      .http()
      .get(`/admin/keys/${limited.id}`)
      .set(...adminAuth());
    expect(view.body.usage).toMatchObject({ requests: 2, tokens: 5 });
    const error = await client(limited.key)
      .embeddings.create({ model: 'mock-embed', input: 'six' })
      .catch((e: unknown) => e);
    expect((error as APIError).status).toBe(402);
    expect((error as APIError).code).toBe('quota_exhausted');
  });

  it('the usage ledger records embedding calls per model: requests, cache hits, prompt tokens', async () => {
    const own = await createKey(app);
    await client(own.key).embeddings.create({ model: 'mock-embed', input: 'ledger one two', encoding_format: 'float' });
    await client(own.key).embeddings.create({ model: 'mock-embed', input: 'ledger one two', encoding_format: 'float' });
    let rows: Record<string, unknown>[] = [];
    for (let attempt = 0; attempt < 50; attempt += 1) {
      const res = await app
        .http()
        .get(`/admin/keys/${own.id}/usage`)
        .query({ from: '2000-01-01', to: '2099-12-31' })
        .set(...adminAuth());
      rows = res.body.data as Record<string, unknown>[];
      if (rows.length > 0 && rows[0].requests === 2) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(rows).toEqual([
      expect.objectContaining({
        model: 'mock-embed',
        requests: 2,
        cached_requests: 1,
        prompt_tokens: 3,
        completion_tokens: 0,
      }),
    ]);
  });

  it('TPM counts input tokens; RPM counts calls', async () => {
    const tpm = await createKey(app, { tpm_limit: 5 });
    await client(tpm.key).embeddings.create({ model: 'mock-embed', input: 'a b c d e f g' }, noStore);
    const overTpm = await client(tpm.key)
      .embeddings.create({ model: 'mock-embed', input: 'h' }, noStore)
      .catch((e: unknown) => e);
    expect((overTpm as APIError).status).toBe(429);
    const rpm = await createKey(app, { rpm_limit: 1 });
    await client(rpm.key).embeddings.create({ model: 'mock-embed', input: 'x' });
    const overRpm = await client(rpm.key)
      .embeddings.create({ model: 'mock-embed', input: 'x' })
      .catch((e: unknown) => e);
    expect((overRpm as APIError).status).toBe(429);
    expect((overRpm as APIError).code).toBe('rate_limit_exceeded');
  });

  it('metrics: backend calls, prompt tokens and cache results of embedding models', async () => {
    const before = parseExposition((await app.http().get('/metrics')).text);
    await client().embeddings.create({ model: 'ollama-embed', input: 'metrics one two' }, noStore);
    await client().embeddings.create({ model: 'ollama-embed', input: 'metrics three' });
    await client().embeddings.create({ model: 'ollama-embed', input: 'metrics three' });
    const after = parseExposition((await app.http().get('/metrics')).text);
    const delta = (name: string, labels: Record<string, string>) =>
      sampleSum(after, name, labels) - sampleSum(before, name, labels);
    expect(delta('llm_requests_total', { model: 'ollama-embed', provider: 'ollama', outcome: 'success' })).toBe(2);
    expect(delta('llm_tokens_total', { model: 'ollama-embed', type: 'prompt' })).toBe(5);
    expect(delta('llm_cache_requests_total', { model: 'ollama-embed', result: 'hit' })).toBe(1);
    expect(delta('http_requests_total', { route: '/v1/embeddings', status_code: '200' })).toBe(3);
  });

  it('a backend error is 502 and free; a chat model cannot embed and an embedding model cannot chat', async () => {
    vllm.setMode('fail');
    const failed = await client()
      .embeddings.create({ model: 'vllm-embed', input: 'boom' }, noStore)
      .catch((e: unknown) => e);
    expect((failed as APIError).status).toBe(502);
    expect((failed as APIError).code).toBe('backend_error');

    const chatModel = await client()
      .embeddings.create({ model: 'mock', input: 'x' })
      .catch((e: unknown) => e);
    expect(chatModel).toBeInstanceOf(OpenAI.BadRequestError);
    expect((chatModel as APIError).param).toBe('model');
    const embedModel = await client()
      .chat.completions.create({ model: 'mock-embed', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect((embedModel as APIError).param).toBe('model');
    const generate = await app
      .http()
      .post('/v1/generate')
      .set('Authorization', `Bearer ${key}`)
      .send({ model: 'vllm-embed', prompt: 'x' });
    expect(generate.status).toBe(400);
    expect(generate.body.error).toMatchObject({ code: 'invalid_request', param: 'model' });
  });

  it.each([
    [{ model: 'mock-embed', input: '' }, 400, 'input'],
    [{ model: 'mock-embed', input: [] }, 400, 'input'],
    [{ model: 'mock-embed', input: ['a', 1] }, 400, 'input'],
    [{ model: 'mock-embed', input: [[1, -2]] }, 400, 'input'],
    [{ model: 'mock-embed' }, 400, 'input'],
    [{ model: 'mock-embed', input: 'x', encoding_format: 'int8' }, 400, 'encoding_format'],
    [{ model: 'mock-embed', input: 'x', dimensions: 0 }, 400, 'dimensions'],
    [{ model: 'mock-embed', input: 'x', dimensions: '4' }, 400, 'dimensions'],
    [{ model: 'mock-embed', input: 'x', stream: true }, 400, 'stream'],
    [{ model: 'ollama-embed', input: [[1, 2]] }, 400, 'input'],
    [{ model: 'tiny-embed', input: 'x', dimensions: 3 }, 400, 'dimensions'],
    [{ model: 'tiny-embed', input: [[1, 99999]] }, 400, 'input'],
    [{ model: 'nope', input: 'x' }, 404, null],
  ])('the error table: %j → %i naming %s', async (body, status, param) => {
    const res = await app.http().post('/v1/embeddings').set('Authorization', `Bearer ${key}`).send(body);
    expect(res.status).toBe(status);
    if (param) expect(res.body.error).toMatchObject({ code: 'invalid_request', param });
  });

  it('401 without a key, 403 for a model the key may not use', async () => {
    expect((await app.http().post('/v1/embeddings').send({ input: 'x' })).status).toBe(401);
    const restricted = await createKey(app, { models: ['mock'] });
    const res = await app
      .http()
      .post('/v1/embeddings')
      .set('Authorization', `Bearer ${restricted.key}`)
      .send({ model: 'mock-embed', input: 'x' });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('model_not_allowed');
  });
});
