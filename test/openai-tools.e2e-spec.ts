/**
 * Tool calling and structured outputs on /v1/chat/completions with the official `openai`
 * client, on the fake vLLM (as vLLM and as any OpenAI-compatible server), the fake Ollama and
 * the mock (the embedded engine's share is in
 * openai-structured-engine.e2e-spec.ts):
 * - a full round trip (call → tool result → final answer), streamed calls reassembled by the
 *   SDK, and the exact `delta.tool_calls` chunks of OpenAI's wire format;
 * - `json_schema` answers parsed by the SDK's `parse()`;
 * - what reaches the backends: OpenAI's shapes passed through to vLLM, Ollama's own shapes
 *   (`tools`, `tool_calls` with object arguments, `tool_name`, `format`), ids generated when
 *   Ollama gives none;
 * - tools and response formats in the cache key; tool calls cached and replayed as streams;
 * - 400s naming the offending field.
 *
 * Wire formats of the fakes: vLLM vllm/entrypoints/openai/protocol.py (ToolCall, DeltaToolCall:
 * `{id?, type?, index, function: {name?, arguments?}}`), serving_chat.py (the first delta of a
 * call has id, type and name, the next ones argument fragments); Ollama docs/api.md "Chat
 * request (with tools)" (`message.tool_calls: [{function: {name, arguments: {…}}}]`, arguments
 * an object, `tool_name` on tool messages, `format` "json" or a schema). See test/fakes.
 */
import OpenAI from 'openai';
import { startTestApp, type TestApp } from './harness/app';
import { describeInProcess } from './harness/environment';
import { createKey } from './harness/keys';
import { listenOnLoopback } from './harness/listen';
import { sseEvents } from './harness/sse';
import { FakeOllama } from './fakes/fake-ollama';
import { FakeVllm } from './fakes/fake-vllm';

const WEATHER_TOOL = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Current weather of a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['city', 'unit'],
      additionalProperties: false,
    },
  },
};
const TIME_TOOL = {
  type: 'function' as const,
  function: {
    name: 'get_time',
    parameters: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] },
  },
};
const CITY_SCHEMA = {
  type: 'object',
  properties: { city: { type: 'string' }, temperature: { type: 'number' }, sunny: { type: 'boolean' } },
  required: ['city', 'temperature', 'sunny'],
  additionalProperties: false,
};

describeInProcess(
  'OpenAI tool calling and structured outputs',
  'points the openai SDK at the in-process server',
  () => {
    let app: TestApp;
    let vllm: FakeVllm;
    let ollama: FakeOllama;
    let baseURL: string;
    let key: string;

    const client = (apiKey = key) => new OpenAI({ apiKey, baseURL, maxRetries: 0, timeout: 20_000 });
    const noStore = { headers: { 'Cache-Control': 'no-store' } };

    beforeAll(async () => {
      [vllm, ollama] = await Promise.all([FakeVllm.start(), FakeOllama.start()]);
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
  - name: openai-chat
    provider: openai
    upstream_model: gpt-compatible
    base_url: ${vllm.url}
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

    // openai-chat: the OpenAI-compatible provider (its own dialect) against the same fake server.
    describe.each([['vllm-chat'], ['openai-chat'], ['ollama-chat'], ['mock']])('%s', (model) => {
      it('a full round trip: the model calls the tool, gets its result, answers with text', async () => {
        const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Paris?' }];
        const first = await client().chat.completions.create({ model, messages, tools: [WEATHER_TOOL] }, noStore);
        const choice = first.choices[0];
        expect(choice.finish_reason).toBe('tool_calls');
        expect(choice.message.content).toBeNull();
        const calls = choice.message.tool_calls!;
        expect(calls).toHaveLength(1);
        const call = calls[0] as OpenAI.ChatCompletionMessageFunctionToolCall;
        expect(call).toMatchObject({ type: 'function', function: { name: 'get_weather' } });
        expect(call.id).toMatch(/^\S+$/);
        const args = JSON.parse(call.function.arguments) as Record<string, unknown>;
        expect(typeof args.city).toBe('string');
        expect(first.usage!.total_tokens).toBeGreaterThan(0);

        messages.push(choice.message, { role: 'tool', tool_call_id: call.id, content: '{"temperature": 21}' });
        const second = await client().chat.completions.create({ model, messages, tools: [WEATHER_TOOL] }, noStore);
        expect(second.choices[0].finish_reason).toBe('stop');
        expect(second.choices[0].message.tool_calls ?? []).toEqual([]);
        expect(second.choices[0].message.content!.length).toBeGreaterThan(0);
      });

      it('streamed tool calls are reassembled by the SDK into the non-streamed answer', async () => {
        const params = {
          model,
          messages: [{ role: 'user' as const, content: 'Weather in Oslo?' }],
          tools: [WEATHER_TOOL],
          seed: 3,
        };
        const plain = await client().chat.completions.create(params, noStore);
        const runner = client().chat.completions.stream(params, noStore);
        const streamed = await runner.finalChatCompletion();
        expect(streamed.choices[0].finish_reason).toBe('tool_calls');
        const plainCall = plain.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
        const streamedCall = streamed.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
        expect(streamedCall.function).toEqual(plainCall.function);
        expect(JSON.parse(streamedCall.function.arguments)).toEqual(JSON.parse(plainCall.function.arguments));
      });

      it('json_schema: the answer is parsed by the SDK parse() helper', async () => {
        const completion = await client().chat.completions.parse(
          {
            model,
            messages: [{ role: 'user', content: 'Paris' }],
            response_format: { type: 'json_schema', json_schema: { name: 'city', schema: CITY_SCHEMA, strict: true } },
          },
          noStore,
        );
        const parsed = completion.choices[0].message.parsed as unknown;
        expect(parsed).toEqual({
          city: expect.any(String),
          temperature: expect.any(Number),
          sunny: expect.any(Boolean),
        });
      });

      it('json_object: the answer is a JSON object', async () => {
        const res = await client().chat.completions.create(
          { model, messages: [{ role: 'user', content: 'Rome' }], response_format: { type: 'json_object' } },
          noStore,
        );
        const value = JSON.parse(res.choices[0].message.content!) as unknown;
        expect(typeof value).toBe('object');
        expect(Array.isArray(value)).toBe(false);
      });
    });

    it("vLLM: tools, tool_choice, parallel_tool_calls, response_format and the calls' history go out in OpenAI's shapes", async () => {
      const call = {
        id: 'call_abc',
        type: 'function' as const,
        function: { name: 'get_weather', arguments: '{"city":"Oslo"}' },
      };
      await client().chat.completions.create(
        {
          model: 'vllm-chat',
          messages: [
            { role: 'user', content: 'Weather?' },
            { role: 'assistant', content: null, tool_calls: [call] },
            { role: 'tool', tool_call_id: 'call_abc', content: 'sunny' },
          ],
          tools: [WEATHER_TOOL, TIME_TOOL],
          tool_choice: { type: 'function', function: { name: 'get_time' } },
          parallel_tool_calls: false,
        },
        noStore,
      );
      const body = vllm.requests.at(-1)!.body as Record<string, unknown>;
      expect(vllm.requests.at(-1)!.path).toBe('/v1/chat/completions');
      expect(body.tools).toEqual([WEATHER_TOOL, TIME_TOOL]);
      expect(body.tool_choice).toEqual({ type: 'function', function: { name: 'get_time' } });
      expect(body.parallel_tool_calls).toBe(false);
      expect(body.messages).toEqual([
        { role: 'user', content: 'Weather?' },
        { role: 'assistant', content: null, tool_calls: [call] },
        { role: 'tool', content: 'sunny', tool_call_id: 'call_abc' },
      ]);

      await client().chat.completions.create(
        {
          model: 'vllm-chat',
          messages: [{ role: 'user', content: 'x' }],
          response_format: { type: 'json_schema', json_schema: { name: 'city', schema: CITY_SCHEMA, strict: true } },
        },
        noStore,
      );
      expect((vllm.requests.at(-1)!.body as Record<string, unknown>).response_format).toEqual({
        type: 'json_schema',
        json_schema: { name: 'city', schema: CITY_SCHEMA, strict: true },
      });
    });

    it("Ollama: tools, tool calls (object arguments), tool_name and format go out in Ollama's shapes; ids are generated", async () => {
      const res = await client().chat.completions.create(
        { model: 'ollama-chat', messages: [{ role: 'user', content: 'Weather in Bergen?' }], tools: [WEATHER_TOOL] },
        noStore,
      );
      const call = res.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
      expect(call.id).toMatch(/^call_[A-Za-z0-9]{24}$/);
      expect(JSON.parse(call.function.arguments)).toEqual({ city: 'Weather in Bergen?', unit: 'Weather in Bergen?' });
      const sent = ollama.requests.at(-1)!.body as Record<string, unknown>;
      expect(sent.tools).toEqual([WEATHER_TOOL]);

      await client().chat.completions.create(
        {
          model: 'ollama-chat',
          messages: [
            { role: 'user', content: 'Weather in Bergen?' },
            res.choices[0].message,
            { role: 'tool', tool_call_id: call.id, content: 'rain' },
          ],
          tools: [WEATHER_TOOL],
        },
        noStore,
      );
      expect((ollama.requests.at(-1)!.body as { messages: unknown[] }).messages).toEqual([
        { role: 'user', content: 'Weather in Bergen?' },
        {
          role: 'assistant',
          content: '',
          tool_calls: [{ function: { name: 'get_weather', arguments: JSON.parse(call.function.arguments) } }],
        },
        { role: 'tool', content: 'rain', tool_name: 'get_weather' },
      ]);

      await client().chat.completions.create(
        {
          model: 'ollama-chat',
          messages: [{ role: 'user', content: 'x' }],
          tool_choice: 'none',
          tools: [WEATHER_TOOL],
        },
        noStore,
      );
      expect((ollama.requests.at(-1)!.body as Record<string, unknown>).tools).toBeUndefined();

      for (const [format, expected] of [
        [{ type: 'json_object' }, 'json'],
        [{ type: 'json_schema', json_schema: { name: 'c', schema: CITY_SCHEMA } }, CITY_SCHEMA],
      ] as const) {
        await client().chat.completions.create(
          {
            model: 'ollama-chat',
            messages: [{ role: 'user', content: 'x' }],
            response_format: format as OpenAI.ResponseFormatJSONObject,
          },
          noStore,
        );
        expect((ollama.requests.at(-1)!.body as Record<string, unknown>).format).toEqual(expected);
      }
    });

    it("streams carry delta.tool_calls exactly as OpenAI's wire format does", async () => {
      const res = await fetch(`${baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'cache-control': 'no-store' },
        body: JSON.stringify({
          model: 'mock',
          stream: true,
          messages: [{ role: 'user', content: '[mock:parallel] weather and time' }],
          tools: [WEATHER_TOOL, TIME_TOOL],
        }),
      });
      const events = sseEvents(await res.text());
      expect(events.at(-1)).toBe('[DONE]');
      const chunks = events.slice(0, -1) as {
        object: string;
        choices: { delta: Record<string, unknown>; finish_reason: string | null }[];
      }[];
      for (const chunk of chunks) expect(chunk.object).toBe('chat.completion.chunk');
      const deltas = chunks.map((chunk) => chunk.choices[0].delta);
      // The first chunk opens the assistant turn and the first call: index, id, type, name, no arguments yet.
      expect(deltas[0]).toEqual({
        role: 'assistant',
        content: null,
        tool_calls: [
          {
            index: 0,
            id: expect.stringMatching(/^call_/),
            type: 'function',
            function: { name: 'get_weather', arguments: '' },
          },
        ],
      });
      const calls = new Map<number, { id?: string; name?: string; args: string }>();
      for (const delta of deltas.slice(0, -1)) {
        const [part] = delta.tool_calls as {
          index: number;
          id?: string;
          function: { name?: string; arguments: string };
        }[];
        const call = calls.get(part.index) ?? { args: '' };
        if (part.id) {
          // Only the opening chunk of a call has id, type and name.
          expect(call.id).toBeUndefined();
          Object.assign(call, { id: part.id, name: part.function.name });
        } else {
          expect(Object.keys(part).sort()).toEqual(['function', 'index']);
          expect(Object.keys(part.function)).toEqual(['arguments']);
        }
        call.args += part.function.arguments;
        calls.set(part.index, call);
      }
      expect([...calls.keys()]).toEqual([0, 1]);
      expect(calls.get(1)!.name).toBe('get_time');
      for (const call of calls.values()) expect(typeof JSON.parse(call.args)).toBe('object');
      expect(chunks.at(-1)!.choices[0]).toMatchObject({ delta: {}, finish_reason: 'tool_calls' });
    });

    it('the mock is deterministic: the same request makes the same calls with the same ids', async () => {
      const params = {
        model: 'mock',
        messages: [{ role: 'user' as const, content: 'weather?' }],
        tools: [WEATHER_TOOL],
      };
      const a = await client().chat.completions.create(params, noStore);
      const b = await client().chat.completions.create(params, noStore);
      expect(b.choices[0].message.tool_calls).toEqual(a.choices[0].message.tool_calls);
      const named = await client().chat.completions.create(
        {
          ...params,
          tools: [WEATHER_TOOL, TIME_TOOL],
          tool_choice: { type: 'function', function: { name: 'get_time' } },
        },
        noStore,
      );
      const call = named.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
      expect(call.function.name).toBe('get_time');
      const none = await client().chat.completions.create({ ...params, tool_choice: 'none' }, noStore);
      expect(none.choices[0].message.tool_calls).toBeUndefined();
      expect(none.choices[0].finish_reason).not.toBe('tool_calls');
    });

    it('tool calls are cached and replayed (also as a stream); tools and response_format are part of the key', async () => {
      const params = {
        model: 'vllm-chat',
        messages: [{ role: 'user' as const, content: 'cache me a weather call' }],
        tools: [WEATHER_TOOL],
      };
      const first = await client().chat.completions.create(params);
      const again = (await client().chat.completions.create(params)) as OpenAI.ChatCompletion & { cached?: boolean };
      expect(again.cached).toBe(true);
      expect(again.choices[0].message.tool_calls).toEqual(first.choices[0].message.tool_calls);
      expect(again.choices[0].finish_reason).toBe('tool_calls');
      const replay = await client().chat.completions.stream(params).finalChatCompletion();
      expect(replay.choices[0].message.tool_calls).toEqual(first.choices[0].message.tool_calls);
      expect(vllm.requests).toHaveLength(1);

      const variants = [
        { ...params, tools: [TIME_TOOL] },
        { ...params, tool_choice: 'required' as const },
        { ...params, parallel_tool_calls: false },
        { ...params, response_format: { type: 'json_object' as const } },
      ];
      for (const variant of variants) {
        const res = (await client().chat.completions.create(variant)) as OpenAI.ChatCompletion & { cached?: boolean };
        expect(res.cached).toBe(false);
      }
      expect(vllm.requests).toHaveLength(1 + variants.length);
    });

    it.each([
      [{ tools: [WEATHER_TOOL], tool_choice: { type: 'function', function: { name: 'nope' } } }, 'tool_choice'],
      [{ tool_choice: 'required' }, 'tool_choice'],
      [{ tools: [{ type: 'retrieval' }] }, 'tools.0.type'],
      [{ tools: [{ type: 'function', function: { name: 'bad name!' } }] }, 'tools.0.function.name'],
      [{ tools: [WEATHER_TOOL, WEATHER_TOOL] }, 'tools.1.function.name'],
      [{ tool_choice: 'sometimes' }, 'tool_choice'],
      [{ parallel_tool_calls: 'yes' }, 'parallel_tool_calls'],
      [{ response_format: { type: 'json_schema' } }, 'response_format.json_schema'],
      [{ response_format: { type: 'xml' } }, 'response_format.type'],
      [
        { response_format: { type: 'json_schema', json_schema: { name: 'x', schema: 'no' } } },
        'response_format.json_schema.schema',
      ],
      [{ messages: [{ role: 'tool', content: 'r' }] }, 'messages.0.tool_call_id'],
      [{ messages: [{ role: 'user', content: 'r', tool_call_id: 'c' }] }, 'messages.0.tool_call_id'],
      [{ messages: [{ role: 'user', content: null }] }, 'messages.0.content'],
      [
        {
          messages: [
            {
              role: 'user',
              content: 'x',
              tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }],
            },
          ],
        },
        'messages.0.tool_calls',
      ],
    ])('400 invalid_request naming the offending field (case %#)', async (fields, param) => {
      const res = await app
        .http()
        .post('/v1/chat/completions')
        .set('Authorization', `Bearer ${key}`)
        .send({ model: 'mock', messages: [{ role: 'user', content: 'hi' }], ...fields });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'invalid_request', param });
    });
  },
);
