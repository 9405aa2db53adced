/**
 * OpenAI's Responses API (/v1/responses) with the official `openai` client, on the fake vLLM,
 * the fake Ollama and the mock: `responses.create`, `responses.stream` (the SDK's event helpers
 * rebuild the response from our events), function tools over two turns (streamed and not),
 * `text.format` json_schema parsed by `responses.parse`, and on the mock: `previous_response_id`,
 * retrieve and delete (only for the creating key, a rotated one included), `store: false`,
 * expiry and the sweep, what reaches the backend, the output limit lowered, the typed events in
 * order with their sequence numbers, and 400s.
 */
import OpenAI from 'openai';
import { startTestApp, type TestApp } from './harness/app';
import { describeInProcess } from './harness/environment';
import { type FakeBackendsApp, startWithFakeBackends } from './harness/fake-backends-app';
import { adminAuth, createKey } from './harness/keys';
import type { FakeVllm } from './fakes/fake-vllm';
import { ResponseStore } from '../src/modules/stored-responses/response-store';

const WEATHER_TOOL: OpenAI.Responses.FunctionTool = {
  type: 'function',
  name: 'get_weather',
  description: 'Current weather of a city',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
    required: ['city', 'unit'],
    additionalProperties: false,
  },
  strict: true,
};
const CITY_SCHEMA = {
  type: 'object',
  properties: { city: { type: 'string' }, temperature: { type: 'number' }, sunny: { type: 'boolean' } },
  required: ['city', 'temperature', 'sunny'],
  additionalProperties: false,
};

/** The `data:` payloads and `event:` names of an SSE body. */
function typedEvents(text: string): { event: string | null; data: Record<string, unknown> }[] {
  return text
    .split('\n\n')
    .filter((block) => block.includes('data: '))
    .map((block) => {
      const lines = block.split('\n');
      const event = lines.find((line) => line.startsWith('event: '))?.slice(7) ?? null;
      const data = lines.find((line) => line.startsWith('data: '))!.slice(6);
      return { event, data: JSON.parse(data) as Record<string, unknown> };
    });
}

describeInProcess('OpenAI Responses API', 'points the openai SDK at the in-process server', () => {
  let backends: FakeBackendsApp;
  let app: TestApp;
  let vllm: FakeVllm;
  let baseURL: string;
  let key: string;

  const client = (apiKey = key) => new OpenAI({ apiKey, baseURL, maxRetries: 0, timeout: 20_000 });
  const noStore = { headers: { 'Cache-Control': 'no-store' } };

  beforeAll(async () => {
    backends = await startWithFakeBackends();
    ({ app, vllm, key } = backends);
    baseURL = `${backends.baseUrl}/v1`;
  });
  afterAll(() => backends.close());
  beforeEach(() => {
    vllm.reset();
    backends.ollama.reset();
  });

  describe.each([['vllm-chat'], ['ollama-chat'], ['mock']])('%s', (model) => {
    it('responses.create: a completed response with a message item, output_text and usage', async () => {
      const response = await client().responses.create({ model, input: 'Say hello', max_output_tokens: 32 }, noStore);
      expect(response).toMatchObject({ object: 'response', model, error: null });
      expect(response.id).toMatch(/^resp_/);
      expect(['completed', 'incomplete']).toContain(response.status);
      const message = response.output[0] as OpenAI.Responses.ResponseOutputMessage;
      expect(message).toMatchObject({ type: 'message', role: 'assistant', status: 'completed' });
      const text = (message.content[0] as OpenAI.Responses.ResponseOutputText).text;
      expect(text.length).toBeGreaterThan(0);
      expect(response.output_text).toBe(text);
      expect(response.usage).toMatchObject({ input_tokens: expect.any(Number), output_tokens: expect.any(Number) });
      expect(response.usage!.total_tokens).toBe(response.usage!.input_tokens + response.usage!.output_tokens);
      expect(response.usage!.input_tokens_details.cached_tokens).toBe(0);
    });

    it('responses.stream: the SDK rebuilds the non-streamed response from the events', async () => {
      const params = { model, input: 'Count to three', instructions: 'Be brief.', temperature: 0, store: false };
      const plain = await client().responses.create(params, noStore);
      const deltas: string[] = [];
      const stream = client()
        .responses.stream(params, noStore)
        .on('response.output_text.delta', (event) => deltas.push(event.delta));
      const streamed = await stream.finalResponse();
      expect(streamed.status).toBe(plain.status);
      expect(streamed.output_text).toBe(plain.output_text);
      expect(deltas.join('')).toBe(plain.output_text);
      // The SDK adds `parsed` to the parts it rebuilds; the rest is ours.
      expect((streamed.output[0] as OpenAI.Responses.ResponseOutputMessage).content).toEqual(
        (plain.output[0] as OpenAI.Responses.ResponseOutputMessage).content.map((part) => ({ ...part, parsed: null })),
      );
      expect(streamed.usage).toEqual(plain.usage);
    });

    it.each([[false], [true]])('function tools over two turns (stream: %s)', async (stream) => {
      const ask = (input: OpenAI.Responses.ResponseInput) =>
        stream
          ? client()
              .responses.stream({ model, input, tools: [WEATHER_TOOL], store: false }, noStore)
              .finalResponse()
          : client().responses.create({ model, input, tools: [WEATHER_TOOL], store: false }, noStore);
      const input: OpenAI.Responses.ResponseInput = [{ role: 'user', content: 'Weather in Paris?' }];
      const first = await ask(input);
      const call = first.output.find(
        (item) => item.type === 'function_call',
      ) as OpenAI.Responses.ResponseFunctionToolCall;
      expect(call).toMatchObject({ type: 'function_call', name: 'get_weather', status: 'completed' });
      expect(typeof (JSON.parse(call.arguments) as { city?: unknown }).city).toBe('string');
      input.push(...(first.output as OpenAI.Responses.ResponseInputItem[]), {
        type: 'function_call_output',
        call_id: call.call_id,
        output: '21 degrees, sunny',
      });
      const second = await ask(input);
      expect(second.status).toBe('completed');
      expect(second.output.some((item) => item.type === 'function_call')).toBe(false);
      expect(second.output_text.length).toBeGreaterThan(0);
    });

    it('text.format json_schema: responses.parse gives the parsed object', async () => {
      const response = await client().responses.parse(
        {
          model,
          input: 'Paris',
          store: false,
          text: { format: { type: 'json_schema', name: 'city', schema: CITY_SCHEMA, strict: true } },
        },
        noStore,
      );
      expect(response.output_parsed).toEqual({
        city: expect.any(String),
        temperature: expect.any(Number),
        sunny: expect.any(Boolean),
      });
    });
  });

  it('vLLM: instructions, input items, tools, tool_choice and format reach it as chat; the limit is lowered', async () => {
    await client().responses.create(
      {
        model: 'vllm-chat',
        instructions: 'You are terse.',
        max_output_tokens: 100_000,
        store: false,
        input: [
          { role: 'developer', content: 'Use celsius.' },
          { role: 'user', content: [{ type: 'input_text', text: 'Weather?' }] },
          { type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'opaque' },
          { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Oslo"}' },
          { type: 'function_call_output', call_id: 'call_1', output: 'sunny' },
        ],
        tools: [WEATHER_TOOL],
        tool_choice: { type: 'function', name: 'get_weather' },
        parallel_tool_calls: false,
      },
      noStore,
    );
    const body = vllm.requests.at(-1)!.body as Record<string, unknown>;
    expect(body.messages).toEqual([
      { role: 'system', content: 'You are terse.' },
      { role: 'system', content: 'Use celsius.' },
      { role: 'user', content: 'Weather?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
    ]);
    expect(body.tool_choice).toEqual({ type: 'function', function: { name: 'get_weather' } });
    expect(body.parallel_tool_calls).toBe(false);
    expect(body.max_tokens).toBe(256);
  });

  it('the typed stream: named events in order, sequence numbers from 0, no [DONE]', async () => {
    const res = await app
      .http()
      .post('/v1/responses')
      .set('Authorization', `Bearer ${key}`)
      .set('Cache-Control', 'no-store')
      .send({ model: 'mock', input: 'Weather in Rome?', tools: [WEATHER_TOOL], stream: true, store: false });
    expect(res.status).toBe(200);
    expect(res.text).not.toContain('[DONE]');
    const events = typedEvents(res.text);
    for (const { event, data } of events) expect(event).toBe(data.type);
    expect(events.map(({ data }) => data.sequence_number)).toEqual(events.map((_, i) => i));
    const types = events.map(({ data }) => data.type);
    expect(types.slice(0, 2)).toEqual(['response.created', 'response.in_progress']);
    expect(types.at(-1)).toBe('response.completed');
    expect(types).toContain('response.function_call_arguments.delta');
    expect(types).toContain('response.function_call_arguments.done');
  });

  it('a backend failure after the stream started: response.failed with the error, the last event', async () => {
    vllm.mode = 'mid-stream-error';
    const events: string[] = [];
    const stream = client()
      .responses.stream({ model: 'vllm-chat', input: 'Tell me a story', store: false }, noStore)
      .on('event', (event) => events.push(event.type));
    const response = await stream.finalResponse();
    expect(response.status).toBe('failed');
    expect(response.error).toMatchObject({ code: 'backend_error' });
    expect(events.slice(0, 2)).toEqual(['response.created', 'response.in_progress']);
    expect(events.at(-1)).toBe('response.failed');
  });

  it.each([[false], [true]])('reasoning text from vLLM is the first output item (stream: %s)', async (stream) => {
    vllm.reasoning = 'The user greets me; I greet back.';
    const params = { model: 'vllm-chat', input: 'Hello', store: false };
    const events: string[] = [];
    const response = stream
      ? await client()
          .responses.stream(params, noStore)
          .on('event', (event) => events.push(event.type))
          .finalResponse()
      : await client().responses.create(params, noStore);
    const item = response.output[0] as OpenAI.Responses.ResponseReasoningItem;
    expect(item.type).toBe('reasoning');
    expect(item.content).toEqual([{ type: 'reasoning_text', text: 'The user greets me; I greet back.' }]);
    expect(response.output[1].type).toBe('message');
    expect(response.output_text).not.toContain('greets me');
    expect(response.output_text.length).toBeGreaterThan(0);
    if (stream) {
      // Streamed as it came (the fake sends it in two chunks), done before the answer starts.
      expect(events.filter((type) => type === 'response.reasoning_text.delta')).toHaveLength(2);
      expect(events.indexOf('response.reasoning_text.done')).toBeLessThan(events.indexOf('response.output_text.delta'));
    }
  });

  it('a cached answer with reasoning replays it first in a stream', async () => {
    vllm.reasoning = 'Cached thoughts.';
    const params = { model: 'vllm-chat', input: 'Hello from the cache', store: false };
    const first = await client().responses.create(params);
    const replayed = await client().responses.stream(params).finalResponse();
    expect((replayed as unknown as { cached: boolean }).cached).toBe(true);
    expect(replayed.output.map((entry) => entry.type)).toEqual(first.output.map((entry) => entry.type));
    expect((replayed.output[0] as OpenAI.Responses.ResponseReasoningItem).content).toEqual([
      { type: 'reasoning_text', text: 'Cached thoughts.' },
    ]);
  });

  describe('stored responses', () => {
    it('previous_response_id continues the conversation; retrieve and delete', async () => {
      const first = await client().responses.create({ model: 'mock', input: 'My name is Ada.' }, noStore);
      expect((first as unknown as { store: boolean }).store).toBe(true);
      const second = await client().responses.create(
        { model: 'mock', input: 'What is my name?', previous_response_id: first.id },
        noStore,
      );
      expect(second.previous_response_id).toBe(first.id);
      const retrieved = await client().responses.retrieve(second.id);
      expect(retrieved.id).toBe(second.id);
      expect(retrieved.output_text).toBe(second.output_text);

      // The history is sent to the backend: compare with the same turns sent as input items.
      vllm.reset();
      const a = await client().responses.create({ model: 'vllm-chat', input: 'My name is Ada.' }, noStore);
      await client().responses.create(
        { model: 'vllm-chat', input: 'What is my name?', previous_response_id: a.id, instructions: 'Be kind.' },
        noStore,
      );
      expect((vllm.requests.at(-1)!.body as { messages: unknown }).messages).toEqual([
        { role: 'system', content: 'Be kind.' },
        { role: 'user', content: 'My name is Ada.' },
        { role: 'assistant', content: a.output_text },
        { role: 'user', content: 'What is my name?' },
      ]);

      await client().responses.delete(second.id);
      await expect(client().responses.retrieve(second.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
      await expect(client().responses.delete(second.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    });

    it('only the creating key sees a response; a rotated key keeps access', async () => {
      const owner = await createKey(app, { rpm_limit: 1000 });
      const other = await createKey(app, { rpm_limit: 1000 });
      const created = await client(owner.key).responses.create({ model: 'mock', input: 'secret' }, noStore);
      await expect(client(other.key).responses.retrieve(created.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
      await expect(client(other.key).responses.delete(created.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
      await expect(
        client(other.key).responses.create({ model: 'mock', input: 'x', previous_response_id: created.id }),
      ).rejects.toBeInstanceOf(OpenAI.NotFoundError);
      const rotated = await app
        .http()
        .post(`/admin/keys/${owner.id}/rotate`)
        .set(...adminAuth());
      expect(rotated.status).toBe(200);
      await expect(client(owner.key).responses.retrieve(created.id)).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
      const again = await client(rotated.body.key as string).responses.retrieve(created.id);
      expect(again.id).toBe(created.id);
    });

    it('RESPONSES_STORE_DAYS=0: store is ignored (store: false in the answer), previous_response_id a 400', async () => {
      const own = await startTestApp({ env: { RESPONSES_STORE_DAYS: '0' } });
      try {
        const { key: ownKey } = await createKey(own, { rpm_limit: 1000 });
        const post = (body: Record<string, unknown>) =>
          own.http().post('/v1/responses').set('Authorization', `Bearer ${ownKey}`).send(body);
        const created = await post({ model: 'mock-a', input: 'keep me', store: true });
        expect([created.status, created.body.store]).toEqual([200, false]);
        const retrieved = await own
          .http()
          .get(`/v1/responses/${created.body.id}`)
          .set('Authorization', `Bearer ${ownKey}`);
        expect(retrieved.status).toBe(404);
        const continued = await post({ model: 'mock-a', input: 'again', previous_response_id: created.body.id });
        expect([continued.status, continued.body.error.param]).toEqual([400, 'previous_response_id']);
      } finally {
        await own.close();
      }
    });

    it('store: false keeps nothing', async () => {
      const response = await client().responses.create({ model: 'mock', input: 'forget me', store: false }, noStore);
      expect((response as unknown as { store: boolean }).store).toBe(false);
      await expect(client().responses.retrieve(response.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    });

    it('a stored response expires after RESPONSES_STORE_DAYS; the sweep deletes its row', async () => {
      const response = await client().responses.create({ model: 'mock', input: 'short-lived' }, noStore);
      app.clock.advance(31 * 86_400_000);
      try {
        await expect(client().responses.retrieve(response.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
        const store = app.app!.get(ResponseStore);
        expect(await store.sweep()).toBeGreaterThanOrEqual(1);
      } finally {
        app.clock.advance(-31 * 86_400_000);
      }
    });
  });

  it('400s name the field: hosted tools, images, unknown fields, background', async () => {
    const post = (body: Record<string, unknown>) =>
      app
        .http()
        .post('/v1/responses')
        .set('Authorization', `Bearer ${key}`)
        .send({ model: 'mock', input: 'x', ...body });
    const cases: [Record<string, unknown>, string, string?][] = [
      [{ tools: [{ type: 'web_search' }] }, 'tools.0.type', 'web_search'],
      [{ tools: [{ type: 'mcp', server_label: 'x' }] }, 'tools.0.type', 'mcp'],
      [{ input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'x' }] }] }, 'input.0.content.0.type'],
      [{ bogus: true }, 'bogus'],
      [{ background: true }, 'background'],
      [{ text: { format: { type: 'json_schema', name: 'x' } } }, 'text.format.schema'],
      [{ tool_choice: { type: 'function', name: 'nope' } }, 'tool_choice'],
    ];
    for (const [body, param, mention] of cases) {
      const res = await post(body);
      expect([res.status, res.body.error?.param]).toEqual([400, param]);
      if (mention) expect(res.body.error.message).toContain(mention);
    }
  });
});
