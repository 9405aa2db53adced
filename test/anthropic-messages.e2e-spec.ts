/**
 * Anthropic's Messages API (/v1/messages, /v1/messages/count_tokens) with the official
 * `@anthropic-ai/sdk`, on the fake vLLM, the fake Ollama and the mock: `messages.create`,
 * `messages.stream` with `finalMessage()` (the SDK rebuilds the message from our events),
 * tool use over two turns (streamed and not), `countTokens`, errors raised as the SDK's typed
 * errors (in JSON and in-band in a stream), what reaches the backend, and the output limit
 * lowered to the model's max_new_tokens.
 */
import Anthropic from '@anthropic-ai/sdk';
import type { TestApp } from './harness/app';
import { describeInProcess } from './harness/environment';
import { type FakeBackendsApp, startWithFakeBackends } from './harness/fake-backends-app';
import { fakeCompletion } from './fakes/fake-server';
import type { FakeVllm } from './fakes/fake-vllm';

const WEATHER_TOOL: Anthropic.Tool = {
  name: 'get_weather',
  description: 'Current weather of a city',
  input_schema: {
    type: 'object',
    properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
    required: ['city', 'unit'],
  },
};

describeInProcess('Anthropic Messages API', 'points the Anthropic SDK at the in-process server', () => {
  let backends: FakeBackendsApp;
  let app: TestApp;
  let vllm: FakeVllm;
  let baseURL: string;
  let key: string;

  const client = (apiKey = key) => new Anthropic({ apiKey, baseURL, maxRetries: 0, timeout: 20_000 });
  const noStore = { headers: { 'Cache-Control': 'no-store' } };

  beforeAll(async () => {
    backends = await startWithFakeBackends();
    ({ app, vllm, baseUrl: baseURL, key } = backends);
  });
  afterAll(() => backends.close());
  beforeEach(() => {
    vllm.reset();
    backends.ollama.reset();
  });

  describe.each([['vllm-chat'], ['ollama-chat'], ['mock']])('%s', (model) => {
    it('messages.create: a message with text content, a stop reason and usage', async () => {
      const message = await client().messages.create(
        { model, max_tokens: 32, messages: [{ role: 'user', content: 'Say hello' }] },
        noStore,
      );
      expect(message).toMatchObject({ type: 'message', role: 'assistant', model });
      expect(message.id).toMatch(/^msg_/);
      expect(message.content[0].type).toBe('text');
      expect((message.content[0] as Anthropic.TextBlock).text.length).toBeGreaterThan(0);
      expect(['end_turn', 'max_tokens']).toContain(message.stop_reason);
      expect(message.usage.input_tokens).toBeGreaterThan(0);
      expect(message.usage.output_tokens).toBeGreaterThan(0);
    });

    it('messages.stream: finalMessage() equals the non-streamed message', async () => {
      const params = {
        model,
        max_tokens: 32,
        system: [{ type: 'text' as const, text: 'Be brief.' }],
        messages: [{ role: 'user' as const, content: 'Count to three' }],
        temperature: 0,
      };
      const plain = await client().messages.create(params, noStore);
      const texts: string[] = [];
      const stream = client()
        .messages.stream(params, noStore)
        .on('text', (text) => texts.push(text));
      const streamed = await stream.finalMessage();
      expect(streamed.content).toEqual(plain.content);
      expect(texts.join('')).toBe((plain.content[0] as Anthropic.TextBlock).text);
      expect(streamed.stop_reason).toBe(plain.stop_reason);
      expect(streamed.usage.output_tokens).toBe(plain.usage.output_tokens);
      expect(streamed.usage.input_tokens).toBe(plain.usage.input_tokens);
    });

    it.each([[false], [true]])('tool use over two turns (stream: %s)', async (stream) => {
      const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'Weather in Paris?' }];
      const ask = (msgs: Anthropic.MessageParam[]) =>
        stream
          ? client()
              .messages.stream({ model, max_tokens: 64, messages: msgs, tools: [WEATHER_TOOL] }, noStore)
              .finalMessage()
          : client().messages.create({ model, max_tokens: 64, messages: msgs, tools: [WEATHER_TOOL] }, noStore);
      const first = await ask(messages);
      expect(first.stop_reason).toBe('tool_use');
      const use = first.content.find((block) => block.type === 'tool_use') as Anthropic.ToolUseBlock;
      expect(use).toMatchObject({ type: 'tool_use', name: 'get_weather' });
      expect(typeof (use.input as { city?: unknown }).city).toBe('string');
      messages.push(
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '21 degrees, sunny' }] },
      );
      const second = await ask(messages);
      expect(second.stop_reason).toBe('end_turn');
      expect(second.content.some((block) => block.type === 'tool_use')).toBe(false);
      expect((second.content[0] as Anthropic.TextBlock).text.length).toBeGreaterThan(0);
    });

    it('a stop on one of stop_sequences is stop_reason stop_sequence naming it, streamed too (where the backend says which)', async () => {
      const text = '[mock:echo] one two HALT three';
      // The mock echoes the text; the fake vLLM answers words of its own: stop on its third.
      const stop = model === 'vllm-chat' ? fakeCompletion(text, 32).text.split(' ')[3] : 'HALT';
      const params = {
        model,
        max_tokens: 32,
        stop_sequences: ['NEVER', stop],
        messages: [{ role: 'user' as const, content: text }],
      };
      const plain = await client().messages.create(params, noStore);
      const streamed = await client().messages.stream(params, noStore).finalMessage();
      for (const message of [plain, streamed]) {
        if (model === 'ollama-chat') {
          // Ollama does not say which stop string matched.
          expect(message.stop_reason).toBe('end_turn');
          continue;
        }
        expect([message.stop_reason, message.stop_sequence]).toEqual(['stop_sequence', stop]);
      }
    });

    it('countTokens counts the prompt, tools included', async () => {
      const base = { model, messages: [{ role: 'user' as const, content: 'one two three four' }] };
      const plain = await client().messages.countTokens(base);
      const withTools = await client().messages.countTokens({ ...base, tools: [WEATHER_TOOL] });
      expect(plain.input_tokens).toBeGreaterThanOrEqual(4);
      expect(withTools.input_tokens).toBeGreaterThan(plain.input_tokens);
    });
  });

  it('vLLM: system, tools, tool_choice, stop sequences and the tool history reach it as chat', async () => {
    await client().messages.create(
      {
        model: 'vllm-chat',
        max_tokens: 16,
        system: 'You are terse.',
        stop_sequences: ['END'],
        // Anthropic's API takes top_k; this SDK version's types leave it out.
        ...({ top_k: 5 } as object),
        tools: [WEATHER_TOOL],
        tool_choice: { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true },
        messages: [
          { role: 'user', content: 'Weather?' },
          {
            role: 'assistant',
            content: [
              { type: 'text', text: 'Let me check.' },
              { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo', unit: 'celsius' } },
            ],
          },
          {
            role: 'user',
            content: [
              { type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: 'sunny' }] },
              { type: 'text', text: 'And tomorrow?' },
            ],
          },
        ],
      },
      noStore,
    );
    const body = vllm.requests.at(-1)!.body as Record<string, unknown>;
    expect(vllm.requests.at(-1)!.path).toBe('/v1/chat/completions');
    expect(body.messages).toEqual([
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Weather?' },
      {
        role: 'assistant',
        content: 'Let me check.',
        tool_calls: [
          {
            id: 'toolu_1',
            type: 'function',
            function: { name: 'get_weather', arguments: '{"city":"Oslo","unit":"celsius"}' },
          },
        ],
      },
      { role: 'tool', tool_call_id: 'toolu_1', content: 'sunny' },
      { role: 'user', content: 'And tomorrow?' },
    ]);
    expect(body.tools).toEqual([
      {
        type: 'function',
        function: { name: 'get_weather', description: WEATHER_TOOL.description, parameters: WEATHER_TOOL.input_schema },
      },
    ]);
    expect(body.tool_choice).toEqual({ type: 'function', function: { name: 'get_weather' } });
    expect(body.parallel_tool_calls).toBe(false);
    expect(body.stop).toEqual(['END']);
    expect(body.top_k).toBe(5);
  });

  it('max_tokens above the model limit is lowered to it (what reaches the backend)', async () => {
    const message = await client().messages.create(
      { model: 'vllm-chat', max_tokens: 32_000, messages: [{ role: 'user', content: 'Hi' }] },
      noStore,
    );
    expect(message.type).toBe('message');
    expect((vllm.requests.at(-1)!.body as { max_tokens: number }).max_tokens).toBe(256);
  });

  it("errors are Anthropic's shape and the SDK's typed errors", async () => {
    const bad = client().messages.create({ model: 'mock', max_tokens: 0, messages: [{ role: 'user', content: 'x' }] });
    await expect(bad).rejects.toBeInstanceOf(Anthropic.BadRequestError);
    await expect(
      client('sk-not-a-real-key-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa').messages.create({
        model: 'mock',
        max_tokens: 5,
        messages: [{ role: 'user', content: 'x' }],
      }),
    ).rejects.toBeInstanceOf(Anthropic.AuthenticationError);
    await expect(
      client().messages.create({ model: 'nope', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
    ).rejects.toBeInstanceOf(Anthropic.NotFoundError);

    const res = await app
      .http()
      .post('/v1/messages')
      .set('x-api-key', key)
      .set('X-Request-Id', 'req-anthropic-1')
      .send({ model: 'mock', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'image', source: {} }] }] });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      type: 'error',
      error: {
        type: 'invalid_request_error',
        message: expect.stringContaining('image'),
        code: 'invalid_request',
        param: 'messages.0.content.0.type',
      },
      request_id: 'req-anthropic-1',
    });
  });

  it('a hosted tool is a 400 naming it; unknown fields are 400s', async () => {
    const hosted = await app
      .http()
      .post('/v1/messages')
      .set('x-api-key', key)
      .send({
        model: 'mock',
        max_tokens: 5,
        messages: [{ role: 'user', content: 'x' }],
        tools: [{ type: 'web_search_20250305', name: 'web_search' }],
      });
    expect(hosted.status).toBe(400);
    expect(hosted.body.error.message).toContain('web_search');
    expect(hosted.body.error.param).toBe('tools.0.type');
    const unknown = await app
      .http()
      .post('/v1/messages')
      .set('x-api-key', key)
      .send({ model: 'mock', max_tokens: 5, messages: [{ role: 'user', content: 'x' }], bogus: 1 });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ type: 'invalid_request_error', param: 'bogus' });
  });

  it('a backend failure after the stream started is an error event the SDK throws as APIError', async () => {
    vllm.mode = 'mid-stream-error';
    const stream = client().messages.stream(
      { model: 'vllm-chat', max_tokens: 32, messages: [{ role: 'user', content: 'Tell me a story' }] },
      noStore,
    );
    await expect(stream.finalMessage()).rejects.toBeInstanceOf(Anthropic.APIError);
  });
});
