/**
 * The OpenAI-compatible API with the official `openai` client, unchanged, pointed at the
 * in-process server: models.list, completions.create and chat.completions.create, streamed and
 * not, on the fake vLLM, the fake Ollama, the embedded tiny model and the mock; SDK error
 * classes for 400/401/402/403/429 with our code readable; and the /v1/generate guarantees
 * (keys, limits, quota, cache, metrics) on the new routes.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { APIError } from 'openai';
import { startTestApp, type TestApp } from './harness/app';
import { describeInProcess } from './harness/environment';
import { createKey } from './harness/keys';
import { listenOnLoopback, postThenDisconnect } from './harness/listen';
import { parseExposition, sampleSum } from './harness/prometheus';
import { sseEvents } from './harness/sse';
import { fakeChatCompletion, fakeCompletion, waitFor } from './fakes/fake-server';
import { FakeOllama } from './fakes/fake-ollama';
import { FakeVllm } from './fakes/fake-vllm';

describeInProcess(
  'OpenAI-compatible API with the official client',
  'points the openai SDK at the in-process server',
  () => {
    let app: TestApp;
    let vllm: FakeVllm;
    let ollama: FakeOllama;
    let baseURL: string;
    let key: string;

    const client = (apiKey = key) => new OpenAI({ apiKey, baseURL, maxRetries: 0, timeout: 20_000 });

    beforeAll(async () => {
      [vllm, ollama] = await Promise.all([FakeVllm.start(), FakeOllama.start()]);
      const tinyPath = join(mkdtempSync(join(tmpdir(), 'llm-openai-')), 'tiny.gguf');
      app = await startTestApp({
        modelsYaml: `default_model: mock
models:
  - name: mock
    provider: mock
    max_new_tokens: 64
  - name: vllm-chat
    provider: vllm
    upstream_model: org/llama
    base_url: ${vllm.url}
  - name: ollama-chat
    provider: ollama
    upstream_model: llama3:8b
    base_url: ${ollama.url}
  - name: tiny
    provider: llama-cpp
    model_path: ${tinyPath}
    generate_if_missing: true
    sequences: 2
    max_new_tokens: 128
`,
      });
      baseURL = `${await listenOnLoopback(app)}/v1`;
      key = (await createKey(app, { rpm_limit: 100_000 })).key;
    }, 90_000); // the app loads the tiny llama.cpp model too: slow on a loaded machine
    afterAll(async () => {
      await app.close();
      await Promise.all([vllm.close(), ollama.close()]);
    });
    beforeEach(() => {
      vllm.reset();
      ollama.reset();
    });

    it('models.list: the models this key may use, in the OpenAI list format', async () => {
      const all = await client().models.list();
      expect(all.data.map((m) => m.id).sort()).toEqual(['mock', 'ollama-chat', 'tiny', 'vllm-chat']);
      for (const model of all.data)
        expect(model).toMatchObject({ object: 'model', created: expect.any(Number), owned_by: expect.any(String) });
      const restricted = await createKey(app, { models: ['tiny'] });
      expect((await client(restricted.key).models.list()).data.map((m) => m.id)).toEqual(['tiny']);
    });

    describe.each([['vllm-chat'], ['ollama-chat'], ['tiny'], ['mock']])('%s', (model) => {
      it('completions.create: text_completion with choices[0].text, finish_reason and usage', async () => {
        const res = await client().completions.create({
          model,
          prompt: 'Say something',
          max_tokens: 8,
          seed: 1,
          temperature: 0.5,
        });
        expect(res.object).toBe('text_completion');
        expect(res.id).toMatch(/^cmpl-/);
        expect(res.model).toBe(model);
        expect(typeof res.choices[0].text).toBe('string');
        expect(['stop', 'length']).toContain(res.choices[0].finish_reason);
        expect(res.usage!.total_tokens).toBe(res.usage!.prompt_tokens + res.usage!.completion_tokens);
        expect(res.usage!.completion_tokens).toBeGreaterThan(0);
      });

      it('completions.create streamed: chunks join to the answer; usage in the last chunk with include_usage', async () => {
        const params = { model, prompt: 'Stream something', max_tokens: 8, seed: 2 };
        const plain = await client().completions.create(params, { headers: { 'Cache-Control': 'no-store' } });
        const stream = await client().completions.create(
          { ...params, stream: true, stream_options: { include_usage: true } },
          { headers: { 'Cache-Control': 'no-store' } },
        );
        let text = '';
        let finish: string | null = null;
        let usage: OpenAI.CompletionUsage | undefined;
        for await (const chunk of stream) {
          expect(chunk.object).toBe('text_completion');
          if (chunk.choices[0]) {
            text += chunk.choices[0].text;
            finish = chunk.choices[0].finish_reason ?? finish;
          }
          if (chunk.usage) usage = chunk.usage;
        }
        expect(text).toBe(plain.choices[0].text);
        expect(finish).toBe(plain.choices[0].finish_reason);
        expect(usage).toEqual(plain.usage);
      });

      it('chat.completions.create: chat.completion with the assistant message', async () => {
        const res = await client().chat.completions.create({
          model,
          messages: [
            { role: 'system', content: 'You are terse.' },
            { role: 'user', content: [{ type: 'text', text: 'Hello there' }] },
          ],
          max_completion_tokens: 8,
          seed: 3,
        });
        expect(res.object).toBe('chat.completion');
        expect(res.id).toMatch(/^chatcmpl-/);
        expect(res.choices[0].message.role).toBe('assistant');
        expect(typeof res.choices[0].message.content).toBe('string');
        expect(['stop', 'length']).toContain(res.choices[0].finish_reason);
        expect(res.usage!.completion_tokens).toBeGreaterThan(0);
      });

      it('chat.completions.create streamed: a role chunk, content deltas, finish_reason, usage', async () => {
        const params = {
          model,
          messages: [{ role: 'user' as const, content: 'Stream a reply' }],
          max_tokens: 8,
          seed: 4,
        };
        const plain = await client().chat.completions.create(params, { headers: { 'Cache-Control': 'no-store' } });
        const stream = await client().chat.completions.create(
          { ...params, stream: true, stream_options: { include_usage: true } },
          { headers: { 'Cache-Control': 'no-store' } },
        );
        let content = '';
        let role: string | undefined;
        let finish: string | null = null;
        let usage: OpenAI.CompletionUsage | undefined | null;
        for await (const chunk of stream) {
          expect(chunk.object).toBe('chat.completion.chunk');
          const choice = chunk.choices[0];
          if (choice) {
            role ??= choice.delta.role;
            content += choice.delta.content ?? '';
            finish = choice.finish_reason ?? finish;
          }
          if (chunk.usage) usage = chunk.usage;
        }
        expect(role).toBe('assistant');
        expect(content).toBe(plain.choices[0].message.content);
        expect(finish).toBe(plain.choices[0].finish_reason);
        expect(usage).toEqual(plain.usage);
      });
    });

    describe.each([['vllm-chat'], ['mock']])('the raw SSE wire on %s (the SDK tolerates a missing [DONE])', (model) => {
      interface Chunk {
        id: string;
        object: string;
        created: number;
        model: string;
        choices: {
          index: number;
          text?: string;
          delta?: { role?: string; content?: string };
          finish_reason: string | null;
        }[];
        usage?: unknown;
      }
      const post = (path: string, body: Record<string, unknown>) =>
        app.http().post(path).set('Authorization', `Bearer ${key}`).set('Cache-Control', 'no-store').send(body);

      /** Checks what both endpoints share; returns the chunks before [DONE]. */
      function wireChunks(res: Awaited<ReturnType<typeof post>>, object: string, idPrefix: string): Chunk[] {
        expect(res.status).toBe(200);
        expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
        const events = sseEvents(res.text);
        expect(events.at(-1)).toBe('[DONE]');
        expect(events.filter((e) => e === '[DONE]')).toHaveLength(1);
        const chunks = events.slice(0, -1) as Chunk[];
        expect(chunks.length).toBeGreaterThan(1);
        expect(new Set(chunks.map((c) => c.id))).toEqual(new Set([expect.stringMatching(new RegExp(`^${idPrefix}-`))]));
        for (const chunk of chunks) expect(chunk).toMatchObject({ object, model, created: expect.any(Number) });
        return chunks;
      }

      /** The content chunks (one choice each, no usage, finish_reason only on the last). */
      function expectContentChunks(chunks: Chunk[]): void {
        expect(chunks.length).toBeGreaterThan(0);
        for (const chunk of chunks) {
          expect(chunk.usage ?? null).toBeNull();
          expect(chunk.choices).toHaveLength(1);
        }
        expect(chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null)).toBe(true);
        expect(['stop', 'length']).toContain(chunks.at(-1)!.choices[0].finish_reason);
      }

      it.each([[true], [false]])(
        '/v1/completions, include_usage: %s: text_completion chunks, one id, [DONE] last; usage only with include_usage, in a choice-less chunk right before [DONE]',
        async (includeUsage) => {
          const params = { model, prompt: 'raw completion stream', max_tokens: 8, seed: 5 };
          const plain = await post('/v1/completions', params);
          const res = await post('/v1/completions', {
            ...params,
            stream: true,
            ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
          });
          const chunks = wireChunks(res, 'text_completion', 'cmpl');
          const content = includeUsage ? chunks.slice(0, -1) : chunks;
          expectContentChunks(content);
          expect(content.map((c) => c.choices[0].text).join('')).toBe(plain.body.choices[0].text);
          if (includeUsage) expect(chunks.at(-1)).toMatchObject({ choices: [], usage: plain.body.usage });
        },
      );

      it.each([[true], [false]])(
        '/v1/chat/completions, include_usage: %s: a role chunk first, one id, [DONE] last; usage only with include_usage, in a choice-less chunk right before [DONE]',
        async (includeUsage) => {
          const params = { model, messages: [{ role: 'user', content: 'raw chat stream' }], max_tokens: 8, seed: 6 };
          const plain = await post('/v1/chat/completions', params);
          const res = await post('/v1/chat/completions', {
            ...params,
            stream: true,
            ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
          });
          const chunks = wireChunks(res, 'chat.completion.chunk', 'chatcmpl');
          const content = includeUsage ? chunks.slice(0, -1) : chunks;
          expectContentChunks(content);
          expect(content[0].choices[0].delta?.role).toBe('assistant');
          expect(content.slice(1).every((c) => c.choices[0].delta?.role === undefined)).toBe(true);
          expect(content.map((c) => c.choices[0].delta?.content ?? '').join('')).toBe(
            plain.body.choices[0].message.content,
          );
          if (includeUsage) expect(chunks.at(-1)).toMatchObject({ choices: [], usage: plain.body.usage });
        },
      );
    });

    it('maps every field to the backend: vLLM chat and Ollama /api/chat', async () => {
      const messages = [
        { role: 'system' as const, content: 'sys' },
        { role: 'user' as const, content: 'map the fields' },
      ];
      const common = {
        messages,
        max_tokens: 7,
        temperature: 0.3,
        top_p: 0.9,
        stop: ['END'],
        seed: 42,
        top_k: 40,
      } as const;
      const viaVllm = await client().chat.completions.create({
        model: 'vllm-chat',
        ...common,
      } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming);
      expect(vllm.requests.find((r) => r.path === '/v1/chat/completions')?.body).toEqual({
        model: 'org/llama',
        messages,
        max_tokens: 7,
        temperature: 0.3,
        top_p: 0.9,
        top_k: 40,
        stop: ['END'],
        seed: 42,
        stream: false,
      });
      expect(viaVllm.choices[0].message.content).toBe(fakeChatCompletion(messages, 7, ['END']).text);
      await client().chat.completions.create({
        model: 'ollama-chat',
        ...common,
      } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming);
      expect(ollama.requests.find((r) => r.path === '/api/chat')?.body).toMatchObject({
        model: 'llama3:8b',
        messages,
        stream: false,
        options: { num_predict: 7, temperature: 0.3, top_p: 0.9, top_k: 40, stop: ['END'], seed: 42 },
      });
      const completion = await client().completions.create({ model: 'vllm-chat', prompt: 'plain', max_tokens: 5 });
      expect(vllm.requests.find((r) => r.path === '/v1/completions')?.body).toMatchObject({
        prompt: 'plain',
        max_tokens: 5,
      });
      expect(completion.choices[0].text).toBe(fakeCompletion('plain', 5).text);
    });

    describe('errors map to the SDK’s classes, with our code readable', () => {
      it('401 → AuthenticationError', async () => {
        const error = await client('sk-not-a-key')
          .models.list()
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
        expect((error as APIError).code).toBe('invalid_api_key');
      });

      it('400 → BadRequestError naming the field, for the OpenAI fields we cannot honour', async () => {
        const cases: [Record<string, unknown>, string][] = [
          [{ n: 2 }, 'n'],
          [{ logprobs: 2 }, 'logprobs'],
          [{ echo: true }, 'echo'],
          [{ suffix: 'tail' }, 'suffix'],
          [{ best_of: 3 }, 'best_of'],
          [{ logit_bias: { '50256': -500 } }, 'logit_bias'],
          [{ prompt: ['a', 'b'] }, 'prompt'],
          [{ max_tokens: '5' }, 'max_tokens'],
        ];
        for (const [extra, param] of cases) {
          const error = await client()
            .completions.create({
              model: 'mock',
              prompt: 'p',
              ...extra,
            } as unknown as OpenAI.CompletionCreateParamsNonStreaming)
            .catch((e: unknown) => e);
          expect(error).toBeInstanceOf(OpenAI.BadRequestError);
          expect({ param, code: (error as APIError).code, got: (error as APIError).param }).toEqual({
            param,
            code: 'invalid_request',
            got: param,
          });
        }
        const chatCases: [Record<string, unknown>, string][] = [
          [{ tools: [{ type: 'function', function: { name: 'not a name' } }] }, 'tools.0.function.name'],
          [{ n: 3 }, 'n'],
          [{ messages: [] }, 'messages'],
          [{ messages: [{ role: 'tool', content: 'x' }] }, 'messages.0.tool_call_id'],
          [{ messages: [{ role: 'function', content: 'x' }] }, 'messages.0.role'],
          [
            { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] },
            'messages.0.content',
          ],
        ];
        for (const [extra, param] of chatCases) {
          const error = await client()
            .chat.completions.create({
              model: 'mock',
              messages: [{ role: 'user', content: 'hi' }],
              ...extra,
            } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming)
            .catch((e: unknown) => e);
          expect(error).toBeInstanceOf(OpenAI.BadRequestError);
          expect((error as APIError).param).toBe(param);
        }
      });

      it('403 → PermissionDeniedError, 404 → NotFoundError', async () => {
        const restricted = await createKey(app, { models: ['tiny'] });
        const denied = await client(restricted.key)
          .completions.create({ model: 'mock', prompt: 'p' })
          .catch((e: unknown) => e);
        expect(denied).toBeInstanceOf(OpenAI.PermissionDeniedError);
        expect((denied as APIError).code).toBe('model_not_allowed');
        const missing = await client()
          .chat.completions.create({ model: 'gpt-99', messages: [{ role: 'user', content: 'x' }] })
          .catch((e: unknown) => e);
        expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
        expect((missing as APIError).code).toBe('model_not_found');
      });

      it('402 → APIError with status 402 and code quota_exhausted; 429 → RateLimitError', async () => {
        const quota = await createKey(app, { monthly_quota: 1 });
        await client(quota.key).completions.create({ model: 'mock', prompt: 'quota 1' });
        const exhausted = await client(quota.key)
          .completions.create({ model: 'mock', prompt: 'quota 2' })
          .catch((e: unknown) => e);
        expect(exhausted).toBeInstanceOf(OpenAI.APIError);
        expect((exhausted as APIError).status).toBe(402);
        expect((exhausted as APIError).code).toBe('quota_exhausted');

        const limited = await createKey(app, { rpm_limit: 1 });
        await client(limited.key).chat.completions.create({
          model: 'mock',
          messages: [{ role: 'user', content: 'r1' }],
        });
        const tooMany = await client(limited.key)
          .chat.completions.create({ model: 'mock', messages: [{ role: 'user', content: 'r2' }] })
          .catch((e: unknown) => e);
        expect(tooMany).toBeInstanceOf(OpenAI.RateLimitError);
        expect((tooMany as APIError).code).toBe('rate_limit_exceeded');
        expect(Number((tooMany as APIError).headers?.get('retry-after'))).toBeGreaterThan(0);
      });

      it('an error after the first streamed byte surfaces as an APIError from the iterator', async () => {
        vllm.setMode('mid-stream-error', { afterChunks: 2 });
        const stream = await client().chat.completions.create(
          { model: 'vllm-chat', messages: [{ role: 'user', content: 'break please' }], stream: true },
          { headers: { 'Cache-Control': 'no-store' } },
        );
        const consume = async () => {
          for await (const chunk of stream) void chunk;
        };
        const error = await consume().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(OpenAI.APIError);
        expect((error as APIError).code).toBe('backend_error');
      });
    });

    describe('the /v1/generate guarantees on the new routes', () => {
      it('the cache covers messages and every parameter; hits are cached: true with zero usage', async () => {
        const params = {
          model: 'vllm-chat',
          messages: [{ role: 'user' as const, content: 'cache me' }],
          max_tokens: 6,
        };
        const first = await client().chat.completions.create(params);
        const second = await client().chat.completions.create(params);
        expect((first as unknown as { cached: boolean }).cached).toBe(false);
        expect((second as unknown as { cached: boolean }).cached).toBe(true);
        expect(second.choices[0].message.content).toBe(first.choices[0].message.content);
        expect(second.usage!.total_tokens).toBe(0);
        const otherMessages = await client().chat.completions.create({
          ...params,
          messages: [{ role: 'system', content: 'x' }, ...params.messages],
        });
        expect((otherMessages as unknown as { cached: boolean }).cached).toBe(false);
        const otherParam = await client().chat.completions.create({ ...params, temperature: 0.2 });
        expect((otherParam as unknown as { cached: boolean }).cached).toBe(false);
        expect(vllm.requests.filter((r) => r.method === 'POST')).toHaveLength(3);
      });

      it('identical concurrent chat requests are coalesced into one backend call', async () => {
        vllm.setMode('slow', { delayMs: 100 });
        const params = { model: 'vllm-chat', messages: [{ role: 'user' as const, content: 'coalesce chat' }] };
        const results = await Promise.all(Array.from({ length: 10 }, () => client().chat.completions.create(params)));
        expect(new Set(results.map((r) => r.choices[0].message.content)).size).toBe(1);
        expect(vllm.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
      });

      it('a client that disconnects aborts the upstream request', async () => {
        vllm.setMode('hang');
        const base = baseURL.replace(/\/v1$/, '');
        await postThenDisconnect(
          base,
          '/v1/chat/completions',
          { authorization: `Bearer ${key}` },
          { model: 'vllm-chat', messages: [{ role: 'user', content: 'hang' }] },
          150,
        );
        await waitFor(() => vllm.aborted.length > 0, 1000);
      });

      it('metrics carry the route template of each endpoint', async () => {
        await client().completions.create({ model: 'mock', prompt: 'metrics' });
        await client().chat.completions.create({ model: 'mock', messages: [{ role: 'user', content: 'metrics' }] });
        const metrics = parseExposition((await app.http().get('/metrics')).text);
        expect(
          sampleSum(metrics, 'http_requests_total', { route: '/v1/completions', status_code: '200' }),
        ).toBeGreaterThan(0);
        expect(
          sampleSum(metrics, 'http_requests_total', { route: '/v1/chat/completions', status_code: '200' }),
        ).toBeGreaterThan(0);
        expect(sampleSum(metrics, 'llm_requests_total', { model: 'mock', outcome: 'success' })).toBeGreaterThan(0);
      });
    });
  },
);
