/**
 * POST /v1/generate (the seed's test_generate): the response schema, the validation matrix,
 * parameters reaching vLLM and Ollama correctly mapped, 502/503/504, fallbacks, weighted
 * upstreams, streaming, abort propagation and upstream connection reuse.
 */
import { mockCompletion } from '../src/modules/providers/mock-answers';
import { startTestApp, type TestApp } from './harness/app';
import { describeInProcess, isRemote } from './harness/environment';
import { createKey } from './harness/keys';
import { listenOnLoopback, postThenDisconnect } from './harness/listen';
import { sseEvents } from './harness/sse';
import type { ServerResponse } from 'node:http';
import { closedPortUrl, fakeCompletion, waitFor } from './fakes/fake-server';
import type { RecordedRequest } from './fakes/fake-server';
import { FakeOllama } from './fakes/fake-ollama';
import { FakeVllm } from './fakes/fake-vllm';
import { generationParams } from './fakes/model-config';

let app: TestApp;
let key: string;
let vllm: FakeVllm;
let ollama: FakeOllama;
let hanging: FakeVllm;
let weightA: FakeVllm;
let weightB: FakeVllm;
let reuse: FakeOllama;
let slowBody: SlowBodyVllm;

/**
 * A fake vLLM whose `slow` mode also dribbles a non-streamed answer: the response head at once,
 * then the JSON body in pieces `delayMs` apart (FakeVllm sends a non-streamed answer whole after
 * one delay, which a timeout on the response head alone would also catch).
 */
class SlowBodyVllm extends FakeVllm {
  static async startSlowBody(): Promise<SlowBodyVllm> {
    const fake = new SlowBodyVllm();
    await fake.listen();
    return fake;
  }

  protected override async handle(req: RecordedRequest, res: ServerResponse, isClosed: () => boolean): Promise<void> {
    const body = (req.body ?? {}) as { prompt?: unknown; max_tokens?: unknown; stream?: unknown };
    if (this.mode !== 'slow' || req.path !== '/v1/completions' || body.stream === true)
      return super.handle(req, res, isClosed);
    const completion = fakeCompletion(String(body.prompt), typeof body.max_tokens === 'number' ? body.max_tokens : 16);
    const text = JSON.stringify({
      id: 'cmpl-fake',
      object: 'text_completion',
      created: this.created,
      choices: [
        { index: 0, text: completion.text, logprobs: null, finish_reason: completion.finish, stop_reason: null },
      ],
      usage: {
        prompt_tokens: completion.promptTokens,
        completion_tokens: completion.tokens.length,
        total_tokens: completion.promptTokens + completion.tokens.length,
      },
    });
    const pieces = Array.from({ length: 10 }, (_, i) =>
      text.slice(Math.floor((i * text.length) / 10), Math.floor(((i + 1) * text.length) / 10)),
    );
    await this.streamOut(res, 'application/json', pieces, this.delayMs, isClosed);
  }
}

function modelsYaml(closed: string): string {
  return `default_model: mock-a
models:
  - name: mock-a
    provider: mock
    max_new_tokens: 64
    default_max_new_tokens: 16
  - name: mock-b
    provider: mock
  - name: vllm-m
    provider: vllm
    upstream_model: meta-llama/Meta-Llama-3-8B-Instruct
    base_url: ${vllm.url}
    max_new_tokens: 128
    default_max_new_tokens: 20
    timeout_ms: 5000
  - name: ollama-m
    provider: ollama
    upstream_model: llama3:8b
    base_url: ${ollama.url}
    default_max_new_tokens: 20
  - name: hang-m
    provider: vllm
    upstream_model: m
    base_url: ${hanging.url}
    timeout_ms: 300
  - name: slow-m
    provider: vllm
    upstream_model: m
    base_url: ${slowBody.url}
    timeout_ms: 300
  - name: failover-m
    provider: vllm
    upstream_model: meta-llama/Meta-Llama-3-8B-Instruct
    upstreams:
      - base_url: ${closed}
        weight: 5
      - base_url: ${vllm.url}
  - name: erroring-m
    provider: vllm
    upstream_model: meta-llama/Meta-Llama-3-8B-Instruct
    base_url: ${vllm.url}
    fallbacks: [ollama-m]
  - name: dead-m
    provider: vllm
    upstream_model: m
    base_url: ${closed}
    fallbacks: [ollama-m]
  - name: all-dead-m
    provider: vllm
    upstream_model: m
    base_url: ${closed}
    fallbacks: [dead-ollama-m]
  - name: dead-ollama-m
    provider: ollama
    upstream_model: llama3:8b
    base_url: ${closed}
  - name: weighted-m
    provider: vllm
    upstream_model: m
    upstreams:
      - base_url: ${weightA.url}
        weight: 1
      - base_url: ${weightB.url}
        weight: 3
  - name: reuse-m
    provider: ollama
    upstream_model: llama3:8b
    base_url: ${reuse.url}
`;
}

beforeAll(async () => {
  if (isRemote) {
    app = await startTestApp();
  } else {
    [vllm, ollama, hanging, weightA, weightB, reuse, slowBody] = await Promise.all([
      FakeVllm.start(),
      FakeOllama.start(),
      FakeVllm.start(),
      FakeVllm.start(),
      FakeVllm.start(),
      FakeOllama.start(),
      SlowBodyVllm.startSlowBody(),
    ]);
    hanging.setMode('hang');
    app = await startTestApp({ modelsYaml: modelsYaml(await closedPortUrl()) });
  }
  // Far more requests than DEFAULT_RPM go through this one key within one (fake) minute.
  key = (await createKey(app, { rpm_limit: 100_000 })).key;
});
afterAll(async () => {
  await app.close();
  await Promise.all(
    [vllm, ollama, hanging, weightA, weightB, reuse, slowBody].filter(Boolean).map((fake) => fake.close()),
  );
});
beforeEach(() => {
  for (const fake of [vllm, ollama, weightA, weightB].filter(Boolean)) fake.reset();
});

// These tests are about the backend call: the completion cache stays out of the way
// (integrate-generate.e2e-spec.ts covers it).
const generate = (body: unknown) =>
  app
    .http()
    .post('/v1/generate')
    .set('X-API-Key', key)
    .set('Cache-Control', 'no-store')
    .send(body as object);

describe('response schema', () => {
  it('answers {id, model, output, cached, finish_reason, usage} for the default model', async () => {
    const res = await generate({ prompt: 'Hello there' });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^gen-[A-Za-z0-9_-]+$/),
      model: expect.any(String),
      output: expect.any(String),
      cached: false,
      finish_reason: expect.stringMatching(/^(stop|length)$/),
      usage: {
        prompt_tokens: expect.any(Number),
        completion_tokens: expect.any(Number),
        total_tokens: expect.any(Number),
      },
    });
    expect(res.body.usage.total_tokens).toBe(res.body.usage.prompt_tokens + res.body.usage.completion_tokens);
  });
});

describeInProcess('the gateway overhead', 'uses mock timing tags', () => {
  it('every response carries X-Gateway-Overhead-Ms: its own time, without the wait on the backend', async () => {
    const started = Date.now();
    const slow = await generate({ prompt: '[mock:slow:100][mock:echo] one two three four five' });
    const total = Date.now() - started;
    const overhead = Number(slow.headers['x-gateway-overhead-ms']);
    expect(total).toBeGreaterThanOrEqual(500); // five words, 100 ms each, in the backend
    expect(overhead).toBeGreaterThanOrEqual(0);
    expect(overhead).toBeLessThan(total - 400);
    // Streams carry it with their first byte; errors and other routes too (all gateway time).
    const streamed = await generate({ prompt: '[mock:slow:100] go', stream: true });
    expect(Number(streamed.headers['x-gateway-overhead-ms'])).toBeLessThan(100);
    const unauthenticated = await app.http().get('/v1/models');
    expect(Number(unauthenticated.headers['x-gateway-overhead-ms'])).toBeGreaterThanOrEqual(0);
    const metrics = await app.http().get('/metrics');
    expect(metrics.text).toMatch(/llm_gateway_overhead_seconds_count\{route="\/v1\/generate"\} [1-9]/);
  });
});

describeInProcess('generation with the mock model', 'uses the test models.yaml', () => {
  it('returns the provider output for exactly the parameters given, with defaults applied', async () => {
    const res = await generate({ prompt: 'Tell me a story', temperature: 0.5, seed: 7 });
    const expected = mockCompletion(
      generationParams({ prompt: 'Tell me a story', maxNewTokens: 16, temperature: 0.5, seed: 7, topP: 1, topK: 0 }),
    );
    expect(res.body).toMatchObject({
      model: 'mock-a',
      output: expected.output,
      finish_reason: expected.finishReason,
      usage: { prompt_tokens: expected.usage.promptTokens, completion_tokens: expected.usage.completionTokens },
    });
  });

  it('404 model_not_found for an unknown model', async () => {
    const res = await generate({ prompt: 'hi', model: 'gpt-17' });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('model_not_found');
  });

  it('403 model_not_allowed for a model outside the key’s list', async () => {
    const restricted = await createKey(app, { models: ['mock-b'] });
    const res = await app
      .http()
      .post('/v1/generate')
      .set('X-API-Key', restricted.key)
      .send({ prompt: 'hi', model: 'mock-a' });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('model_not_allowed');
    const allowed = await app
      .http()
      .post('/v1/generate')
      .set('X-API-Key', restricted.key)
      .send({ prompt: 'hi', model: 'mock-b' });
    expect(allowed.status).toBe(200);
  });

  it('max_new_tokens above the model’s max_new_tokens is 400 naming it', async () => {
    const res = await generate({ prompt: 'hi', max_new_tokens: 65 });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'invalid_request', param: 'max_new_tokens' });
    expect((await generate({ prompt: 'hi', max_new_tokens: 64 })).status).toBe(200);
  });
});

describe('validation matrix (400 invalid_request, param names the field)', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['prompt missing', {}, 'prompt'],
    ['prompt empty', { prompt: '' }, 'prompt'],
    ['prompt a number', { prompt: 5 }, 'prompt'],
    ['prompt a list', { prompt: ['a'] }, 'prompt'],
    ['prompt null', { prompt: null }, 'prompt'],
    ['model a number', { prompt: 'p', model: 3 }, 'model'],
    ['model empty', { prompt: 'p', model: '' }, 'model'],
    ['max_new_tokens as a string', { prompt: 'p', max_new_tokens: '10' }, 'max_new_tokens'],
    ['max_new_tokens fractional', { prompt: 'p', max_new_tokens: 1.5 }, 'max_new_tokens'],
    ['max_new_tokens zero', { prompt: 'p', max_new_tokens: 0 }, 'max_new_tokens'],
    ['max_new_tokens negative', { prompt: 'p', max_new_tokens: -5 }, 'max_new_tokens'],
    ['temperature as a string', { prompt: 'p', temperature: '0.5' }, 'temperature'],
    ['temperature below 0', { prompt: 'p', temperature: -0.1 }, 'temperature'],
    ['temperature above 2', { prompt: 'p', temperature: 2.01 }, 'temperature'],
    ['top_p zero', { prompt: 'p', top_p: 0 }, 'top_p'],
    ['top_p above 1', { prompt: 'p', top_p: 1.1 }, 'top_p'],
    ['top_p as a string', { prompt: 'p', top_p: '1' }, 'top_p'],
    ['top_k below -1', { prompt: 'p', top_k: -2 }, 'top_k'],
    ['top_k above 1000', { prompt: 'p', top_k: 1001 }, 'top_k'],
    ['top_k fractional', { prompt: 'p', top_k: 2.5 }, 'top_k'],
    ['top_k as a string', { prompt: 'p', top_k: '40' }, 'top_k'],
    ['stop a number', { prompt: 'p', stop: 5 }, 'stop'],
    ['stop empty string', { prompt: 'p', stop: '' }, 'stop'],
    ['stop with an empty entry', { prompt: 'p', stop: ['a', ''] }, 'stop'],
    ['stop with 5 entries', { prompt: 'p', stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
    ['stop entry over 256 chars', { prompt: 'p', stop: ['x'.repeat(257)] }, 'stop'],
    ['stop entry not a string', { prompt: 'p', stop: ['a', 1] }, 'stop'],
    ['seed negative', { prompt: 'p', seed: -1 }, 'seed'],
    ['seed above 2^31-1', { prompt: 'p', seed: 2 ** 31 }, 'seed'],
    ['seed fractional', { prompt: 'p', seed: 1.5 }, 'seed'],
    ['seed as a string', { prompt: 'p', seed: '42' }, 'seed'],
    ['stream as a string', { prompt: 'p', stream: 'true' }, 'stream'],
    ['stream a number', { prompt: 'p', stream: 1 }, 'stream'],
    ['unknown field', { prompt: 'p', max_tokens: 10 }, 'max_tokens'],
    ['another unknown field', { prompt: 'p', n: 2 }, 'n'],
  ];
  it.each(cases)('%s', async (_label, body, param) => {
    const res = await generate(body);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'invalid_request', param });
  });

  it('accepts the boundary values', async () => {
    for (const body of [
      { temperature: 0 },
      { temperature: 2 },
      { top_p: 1 },
      { top_p: 0.0001 },
      { top_k: -1 },
      { top_k: 0 },
      { top_k: 1000 },
      { stop: 'x' },
      { stop: ['a', 'b', 'c', 'x'.repeat(256)] },
      { seed: 0 },
      { seed: 2 ** 31 - 1 },
      { max_new_tokens: 1 },
      { stream: false },
    ]) {
      const res = await generate({ prompt: 'boundary', ...body });
      expect({ body, status: res.status }).toEqual({ body, status: 200 });
    }
  });

  it('a body that is not a JSON object is 400', async () => {
    const res = await app
      .http()
      .post('/v1/generate')
      .set('X-API-Key', key)
      .set('Content-Type', 'application/json')
      .send('"just a string"');
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
  });
});

describeInProcess('MAX_PROMPT_CHARS', 'needs its own app', () => {
  it('a prompt over MAX_PROMPT_CHARS is 400 naming prompt', async () => {
    const small = await startTestApp({ env: { MAX_PROMPT_CHARS: '10' } });
    try {
      const smallKey = (await createKey(small)).key;
      const over = await small
        .http()
        .post('/v1/generate')
        .set('X-API-Key', smallKey)
        .send({ prompt: 'x'.repeat(11) });
      expect(over.status).toBe(400);
      expect(over.body.error).toMatchObject({ code: 'invalid_request', param: 'prompt' });
      const at = await small
        .http()
        .post('/v1/generate')
        .set('X-API-Key', smallKey)
        .send({ prompt: 'x'.repeat(10) });
      expect(at.status).toBe(200);
    } finally {
      await small.close();
    }
  });
});

describe('order of checks', () => {
  it('authentication before validation: no key and a bad body → 401', async () => {
    const res = await app.http().post('/v1/generate').send({ prompt: 5 });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('missing_api_key');
    const malformed = await app.http().post('/v1/generate').set('Content-Type', 'application/json').send('{nope');
    expect(malformed.status).toBe(401);
  });

  it('validation before the model: a bad body naming an unknown model → 400', async () => {
    const res = await generate({ model: 'no-such-model', prompt: 'p', temperature: 9 });
    expect(res.status).toBe(400);
    expect(res.body.error.param).toBe('temperature');
  });
});

describeInProcess('parameters reach the backends correctly mapped', 'uses fake backends', () => {
  const all = {
    prompt: 'Map every field',
    max_new_tokens: 7,
    temperature: 0.3,
    top_p: 0.9,
    top_k: 40,
    stop: ['END', '###'],
    seed: 1234,
  };

  it('vLLM: POST /v1/completions with max_tokens, top_k at the top level, stop and seed', async () => {
    const res = await generate({ model: 'vllm-m', ...all });
    expect(res.status).toBe(200);
    const sent = vllm.requests.find((r) => r.path === '/v1/completions');
    expect(sent?.body).toEqual({
      model: 'meta-llama/Meta-Llama-3-8B-Instruct',
      prompt: 'Map every field',
      max_tokens: 7,
      temperature: 0.3,
      top_p: 0.9,
      top_k: 40,
      stop: ['END', '###'],
      seed: 1234,
      stream: false,
    });
    const expected = fakeCompletion('Map every field', 7, ['END', '###']);
    expect(res.body).toMatchObject({ model: 'vllm-m', output: expected.text, finish_reason: expected.finish });
    expect(res.body.usage.completion_tokens).toBe(expected.tokens.length);
  });

  it('vLLM: defaults applied, top_k disabled, no stop or seed sent, a single stop string sent as a list', async () => {
    await generate({ model: 'vllm-m', prompt: 'defaults' });
    expect(vllm.requests.at(-1)?.body).toEqual({
      model: 'meta-llama/Meta-Llama-3-8B-Instruct',
      prompt: 'defaults',
      max_tokens: 20,
      temperature: 1,
      top_p: 1,
      top_k: -1,
      stream: false,
    });
    await generate({ model: 'vllm-m', prompt: 'one stop', stop: 'END', top_k: -1 });
    expect(vllm.requests.at(-1)?.body).toMatchObject({ stop: ['END'], top_k: -1 });
  });

  it('Ollama: POST /api/generate with options.num_predict/temperature/top_p/top_k/stop/seed, raw, not streamed', async () => {
    const res = await generate({ model: 'ollama-m', ...all });
    expect(res.status).toBe(200);
    const sent = ollama.requests.find((r) => r.path === '/api/generate');
    expect(sent?.body).toMatchObject({
      model: 'llama3:8b',
      prompt: 'Map every field',
      stream: false,
      raw: true,
      options: { num_predict: 7, temperature: 0.3, top_p: 0.9, top_k: 40, stop: ['END', '###'], seed: 1234 },
    });
    const expected = fakeCompletion('Map every field', 7, ['END', '###']);
    expect(res.body).toMatchObject({ model: 'ollama-m', output: expected.text, finish_reason: expected.finish });
    expect(res.body.usage).toEqual({
      prompt_tokens: expected.promptTokens,
      completion_tokens: expected.tokens.length,
      total_tokens: expected.promptTokens + expected.tokens.length,
    });
  });

  it('finish_reason is length when max_new_tokens cuts the output', async () => {
    const res = await generate({ model: 'vllm-m', prompt: 'a long enough prompt', max_new_tokens: 2 });
    expect(res.body.finish_reason).toBe('length');
    expect(res.body.usage.completion_tokens).toBe(2);
    const viaOllama = await generate({ model: 'ollama-m', prompt: 'a long enough prompt', max_new_tokens: 2 });
    expect(viaOllama.body.finish_reason).toBe('length');
  });
});

describeInProcess('backend failures', 'uses fake backends', () => {
  it('502 backend_error when the upstream answers with an error, without leaking its URL', async () => {
    vllm.setMode('fail');
    const res = await generate({ model: 'vllm-m', prompt: 'p' });
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe('backend_error');
    expect(JSON.stringify(res.body)).not.toContain(vllm.url);
    expect(JSON.stringify(res.body)).not.toContain('127.0.0.1');
  });

  it('502 backend_error when the upstream answers garbage', async () => {
    ollama.setMode('garbage');
    const res = await generate({ model: 'ollama-m', prompt: 'p' });
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe('backend_error');
  });

  it('504 backend_timeout when the backend does not answer within timeout_ms, and the upstream call is aborted', async () => {
    const started = Date.now();
    const res = await generate({ model: 'hang-m', prompt: 'p' });
    expect(res.status).toBe(504);
    expect(res.body.error.code).toBe('backend_timeout');
    expect(Date.now() - started).toBeLessThan(3000);
    await waitFor(() => hanging.aborted.length > 0, 1000);
  });

  describe('timeout_ms bounds the whole call, not just the response head', () => {
    // slow-m: timeout_ms 300; its fake sends the head at once, then a piece every 100 ms
    // (5 to 10 pieces: the whole answer takes 500 ms or more).
    beforeEach(() => {
      slowBody.reset();
      slowBody.setMode('slow', { delayMs: 100 });
    });

    it('non-streamed: 504 backend_timeout, and the upstream request is aborted', async () => {
      const res = await generate({ model: 'slow-m', prompt: 'take your time', max_new_tokens: 10 });
      expect(res.status).toBe(504);
      expect(res.body.error.code).toBe('backend_timeout');
      expect(slowBody.requests.filter((r) => r.path === '/v1/completions')).toHaveLength(1);
      await waitFor(() => slowBody.aborted.length > 0, 1000);
      expect(slowBody.aborted[0].path).toBe('/v1/completions');
    });

    it('streamed: 200 with deltas, then a backend_timeout error event and [DONE]; the upstream stream is aborted', async () => {
      const res = await generate({ model: 'slow-m', prompt: 'take your time', max_new_tokens: 10, stream: true });
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
      const events = sseEvents(res.text);
      expect(events.at(-1)).toBe('[DONE]');
      expect(events.at(-2)).toEqual({
        error: expect.objectContaining({ code: 'backend_timeout', request_id: res.headers['x-request-id'] }),
      });
      const deltas = events.slice(0, -2) as { delta: string; model: string }[];
      expect(deltas.length).toBeGreaterThan(0);
      for (const delta of deltas)
        expect(delta).toEqual({ id: expect.stringMatching(/^gen-/), model: 'slow-m', delta: expect.any(String) });
      const full = fakeCompletion('take your time', 10).text;
      expect(deltas.map((d) => d.delta).join('').length).toBeLessThan(full.length);
      await waitFor(() => slowBody.aborted.length > 0, 1000);
      expect(slowBody.aborted[0].path).toBe('/v1/completions');
    });
  });

  it('503 backend_unavailable when every upstream and fallback is unreachable', async () => {
    const res = await generate({ model: 'all-dead-m', prompt: 'p' });
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('backend_unavailable');
  });

  it('an unreachable upstream is skipped for the model’s next upstream', async () => {
    const res = await generate({ model: 'failover-m', prompt: 'p' });
    expect(res.status).toBe(200);
    expect(res.body.model).toBe('failover-m');
    expect(vllm.requests.filter((r) => r.path === '/v1/completions')).toHaveLength(1);
  });

  it('when every upstream is unreachable the fallbacks are tried in order', async () => {
    const res = await generate({ model: 'dead-m', prompt: 'fallback please' });
    expect(res.status).toBe(200);
    expect(res.body.model).toBe('ollama-m');
    expect(res.body.output).toBe(fakeCompletion('fallback please', 20).text);
  });

  it('an upstream error is the answer: no fallback on 5xx (plain and streamed)', async () => {
    vllm.setMode('fail');
    const res = await generate({ model: 'erroring-m', prompt: 'p' });
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe('backend_error');
    const streamed = await generate({ model: 'erroring-m', prompt: 'p', stream: true });
    expect(streamed.status).toBe(502);
    expect(streamed.body.error.code).toBe('backend_error');
    expect(vllm.requests.filter((r) => r.path === '/v1/completions')).toHaveLength(2);
    expect(ollama.requests).toHaveLength(0);
  });

  it('spreads requests over upstreams by weight', async () => {
    for (let i = 0; i < 8; i += 1) expect((await generate({ model: 'weighted-m', prompt: `w${i}` })).status).toBe(200);
    expect(weightA.requests.filter((r) => r.method === 'POST')).toHaveLength(2);
    expect(weightB.requests.filter((r) => r.method === 'POST')).toHaveLength(6);
  });

  it('reuses one keep-alive connection per upstream across requests', async () => {
    for (let i = 0; i < 10; i += 1) {
      expect((await generate({ model: 'reuse-m', prompt: `reuse ${i}`, stream: i % 2 === 0 })).status).toBe(200);
    }
    expect(reuse.requests.filter((r) => r.path === '/api/generate')).toHaveLength(10);
    expect(reuse.connections).toBe(1);
  });
});

describe('streaming', () => {
  function expectStreamShape(text: string, model?: string) {
    const events = sseEvents(text);
    expect(events.at(-1)).toBe('[DONE]');
    const final = events.at(-2) as Record<string, unknown>;
    const deltas = events.slice(0, -2) as { id: string; model: string; delta: string }[];
    expect(deltas.length).toBeGreaterThan(0);
    for (const delta of deltas) {
      expect(Object.keys(delta).sort()).toEqual(['delta', 'id', 'model']);
      expect(delta.id).toBe(final.id);
      if (model) expect(delta.model).toBe(model);
    }
    expect(final).toMatchObject({ done: true, cached: false, output: deltas.map((d) => d.delta).join('') });
    expect(final).toEqual(
      expect.objectContaining({
        id: expect.stringMatching(/^gen-/),
        finish_reason: expect.stringMatching(/^(stop|length)$/),
        usage: expect.any(Object),
      }),
    );
    return { deltas, final };
  }

  it('sends SSE deltas, the full body with done: true, then [DONE]', async () => {
    const res = await generate({ prompt: 'stream me', stream: true });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    expectStreamShape(res.text);
  });

  describeInProcess('against each backend', 'uses fake backends', () => {
    it.each([['vllm-m'], ['ollama-m'], ['mock-a']])(
      '%s: deltas join to the same output as the non-streamed answer',
      async (model) => {
        const plain = await generate({ model, prompt: 'same either way', max_new_tokens: 8, seed: 3 });
        const streamed = await generate({ model, prompt: 'same either way', max_new_tokens: 8, seed: 3, stream: true });
        const { final } = expectStreamShape(streamed.text, model);
        expect(final.output).toBe(plain.body.output);
        expect(final.usage).toEqual(plain.body.usage);
        expect(final.finish_reason).toBe(plain.body.finish_reason);
      },
    );

    it('streams with stream_options.include_usage to vLLM and stream: true to Ollama', async () => {
      await generate({ model: 'vllm-m', prompt: 's', stream: true });
      expect(vllm.requests.at(-1)?.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
      await generate({ model: 'ollama-m', prompt: 's', stream: true });
      expect(ollama.requests.at(-1)?.body).toMatchObject({ stream: true, raw: true });
    });

    it('an error before the first byte is an ordinary JSON error with its status', async () => {
      vllm.setMode('fail');
      const res = await generate({ model: 'vllm-m', prompt: 'p', stream: true });
      expect(res.status).toBe(502);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body.error.code).toBe('backend_error');
      const unavailable = await generate({ model: 'all-dead-m', prompt: 'p', stream: true });
      expect(unavailable.status).toBe(503);
    });

    it('an error after the first byte is an error event, then [DONE]', async () => {
      for (const [fake, model] of [
        [vllm, 'vllm-m'],
        [ollama, 'ollama-m'],
      ] as const) {
        fake.setMode('mid-stream-error', { afterChunks: 2 });
        const res = await generate({ model, prompt: 'break halfway please', stream: true });
        expect(res.status).toBe(200);
        const events = sseEvents(res.text);
        expect(events.at(-1)).toBe('[DONE]');
        expect(events.at(-2)).toEqual({
          error: expect.objectContaining({ code: 'backend_error', request_id: res.headers['x-request-id'] }),
        });
        expect((events.slice(0, -2) as { delta: string }[]).every((e) => typeof e.delta === 'string')).toBe(true);
        expect(events.length).toBeGreaterThanOrEqual(4);
      }
    });

    it('streams fall back to the next upstream and to fallbacks before the first byte', async () => {
      const res = await generate({ model: 'dead-m', prompt: 'stream fallback', stream: true });
      const { final } = expectStreamShape(res.text, 'ollama-m');
      expect(final.model).toBe('ollama-m');
    });
  });
});

describeInProcess('client disconnects', 'cuts a raw connection to the in-process server', () => {
  let baseUrl: string;
  beforeAll(async () => {
    baseUrl = await listenOnLoopback(app);
  });

  it('aborts the upstream request at once (non-streamed)', async () => {
    vllm.setMode('hang');
    await postThenDisconnect(
      baseUrl,
      '/v1/generate',
      { 'x-api-key': key },
      { model: 'vllm-m', prompt: 'hang on' },
      150,
    );
    const cut = Date.now();
    expect(vllm.requests.filter((r) => r.path === '/v1/completions')).toHaveLength(1);
    expect(vllm.aborted).toHaveLength(0);
    // vllm-m's timeout_ms is 5000: an abort within a second of the cut comes from the disconnect.
    await waitFor(() => vllm.aborted.length > 0, 1000);
    expect(vllm.aborted[0].at - cut).toBeLessThan(1000);
  });

  it('aborts the upstream stream at once (streamed)', async () => {
    // 200 ms per chunk: the whole stream takes 1.2 s or more, so it is still running at the cut.
    ollama.setMode('slow', { delayMs: 200 });
    await postThenDisconnect(
      baseUrl,
      '/v1/generate',
      { 'x-api-key': key },
      { model: 'ollama-m', prompt: 'slowly now', stream: true },
      300,
    );
    const cut = Date.now();
    expect(ollama.requests.filter((r) => r.path === '/api/generate')).toHaveLength(1);
    expect(ollama.aborted).toHaveLength(0);
    await waitFor(() => ollama.aborted.length > 0, 1000);
    expect(ollama.aborted[0].at - cut).toBeLessThan(1000);
  });
});
