/**
 * The embedded engine (the tiny random-weight GGUF the project generates) with OpenAI's
 * structured outputs and tools:
 * - grammar-constrained decoding from the JSON schema makes even this model, which knows no
 *   JSON, answer JSON that validates against the schema (checked with Ajv) for several schemas,
 *   and parses with the SDK's parse(); json_object gives a JSON value;
 * - without function calling in the chat template (the default tiny model has none) tools are
 *   a clear 400 naming `tools`;
 * - with a tool-aware template (TINY_TOOLS_CHAT_TEMPLATE, whose call syntax node-llama-cpp
 *   recognises) tools reach the model through node-llama-cpp's function calling: a named
 *   tool_choice forces a call whose arguments validate against the tool's schema, streamed as
 *   OpenAI tool-call chunks, and a full round trip (call → tool result → answer) renders the
 *   call and its result with the template.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Ajv from 'ajv';
import OpenAI, { APIError } from 'openai';
import { TINY_TOOLS_CHAT_TEMPLATE, writeTinyModel } from '../../src/modules/gguf/tiny-model';
import { startTestApp, type TestApp } from '../harness/app';
import { describeInProcess } from '../harness/environment';
import { createKey } from '../harness/keys';
import { listenOnLoopback } from '../harness/listen';

/** Bounded strings and arrays: a model that never closes a string would otherwise run to max_tokens. */
const SCHEMAS: [string, Record<string, unknown>][] = [
  [
    'flat object with enum, integer and boolean',
    {
      type: 'object',
      properties: {
        unit: { enum: ['celsius', 'fahrenheit'] },
        degrees: { type: 'integer' },
        sunny: { type: 'boolean' },
      },
      required: ['unit', 'degrees', 'sunny'],
      additionalProperties: false,
    },
  ],
  [
    'nested object with a bounded string',
    {
      type: 'object',
      properties: {
        city: { type: 'object', properties: { name: { type: 'string', maxLength: 8 } }, required: ['name'] },
        ok: { const: true },
      },
      required: ['city', 'ok'],
      additionalProperties: false,
    },
  ],
  [
    'array of numbers with bounds on length',
    {
      type: 'object',
      properties: { values: { type: 'array', items: { type: 'number' }, minItems: 1, maxItems: 3 } },
      required: ['values'],
      additionalProperties: false,
    },
  ],
  [
    'one of two shapes',
    {
      type: 'object',
      properties: {
        answer: { oneOf: [{ type: 'null' }, { type: 'string', enum: ['yes', 'no'] }] },
      },
      required: ['answer'],
      additionalProperties: false,
    },
  ],
];

describeInProcess('embedded engine: structured outputs and tools', 'boots the in-process server', () => {
  let app: TestApp;
  let client: OpenAI;
  const ajv = new Ajv({ strict: false });

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llm-structured-'));
    const tinyPath = join(dir, 'tiny.gguf');
    const toolsPath = join(dir, 'tiny-tools.gguf');
    writeTinyModel(toolsPath, 42, { chatTemplate: TINY_TOOLS_CHAT_TEMPLATE });
    app = await startTestApp({
      modelsYaml: `default_model: tiny
models:
  - name: tiny
    provider: llama-cpp
    model_path: ${tinyPath}
    generate_if_missing: true
    max_new_tokens: 512
  - name: tiny-tools
    provider: llama-cpp
    model_path: ${toolsPath}
    max_new_tokens: 256
    context_size: 4096
`,
    });
    const key = (await createKey(app, { rpm_limit: 100_000 })).key;
    client = new OpenAI({ apiKey: key, baseURL: `${await listenOnLoopback(app)}/v1`, maxRetries: 0, timeout: 60_000 });
  });
  afterAll(async () => {
    await app.close();
  });

  it.each(SCHEMAS)('json_schema (%s): every answer validates against the schema', async (_name, schema) => {
    const validate = ajv.compile(schema);
    for (const seed of [1, 2, 3]) {
      const res = await client.chat.completions.parse({
        model: 'tiny',
        messages: [{ role: 'user', content: 'Answer in JSON.' }],
        response_format: { type: 'json_schema', json_schema: { name: 'answer', schema, strict: true } },
        max_tokens: 512,
        seed,
        temperature: 1,
      });
      const choice = res.choices[0];
      expect(choice.finish_reason).toBe('stop');
      const value = choice.message.parsed;
      expect({ seed, value, valid: validate(value), errors: validate.errors }).toMatchObject({ valid: true });
    }
  });

  it('json_schema streamed: the joined deltas are the same valid JSON', async () => {
    const [, schema] = SCHEMAS[0];
    const params = {
      model: 'tiny',
      messages: [{ role: 'user' as const, content: 'Stream JSON.' }],
      response_format: { type: 'json_schema' as const, json_schema: { name: 'a', schema } },
      max_tokens: 256,
      seed: 9,
    };
    const plain = await client.chat.completions.create(params, { headers: { 'Cache-Control': 'no-store' } });
    const stream = await client.chat.completions.create(
      { ...params, stream: true },
      { headers: { 'Cache-Control': 'no-store' } },
    );
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe(plain.choices[0].message.content);
    expect(ajv.compile(schema)(JSON.parse(text))).toBe(true);
  });

  it('json_object: the answer is a JSON value', async () => {
    const res = await client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'JSON please' }],
      response_format: { type: 'json_object' },
      max_tokens: 512,
      seed: 4,
    });
    if (res.choices[0].finish_reason === 'stop') {
      expect(() => JSON.parse(res.choices[0].message.content!) as unknown).not.toThrow();
    } else {
      // A free-form JSON grammar lets a random model write a string to the end of max_tokens.
      expect(res.choices[0].message.content!.trimStart()).toMatch(/^[[{"\d-tfn]/);
    }
  });

  it('tools on a template without function calling: a clear 400 invalid_request naming tools', async () => {
    const error = await client.chat.completions
      .create({
        model: 'tiny',
        messages: [{ role: 'user', content: 'weather?' }],
        tools: [
          { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } },
        ],
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect({ code: (error as APIError).code, param: (error as APIError).param }).toEqual({
      code: 'invalid_request',
      param: 'tools',
    });
    const withToolMessage = await client.chat.completions
      .create({
        model: 'tiny',
        messages: [
          { role: 'user', content: 'weather?' },
          { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
        ],
      })
      .catch((e: unknown) => e);
    expect((withToolMessage as APIError).param).toBe('messages');
    // tool_choice "none" means the tools are not used: the engine answers.
    const none = await client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'weather?' }],
      tools: [{ type: 'function', function: { name: 'get_weather' } }],
      tool_choice: 'none',
      max_tokens: 4,
    });
    expect(none.choices[0].finish_reason).toBe('length');
  });

  describe('a template with function calling', () => {
    const WEATHER = {
      type: 'function' as const,
      function: {
        name: 'get_weather',
        description: 'Current weather of a city',
        parameters: {
          type: 'object',
          properties: { city: { type: 'string', maxLength: 10 }, unit: { enum: ['celsius', 'fahrenheit'] } },
          required: ['city', 'unit'],
          additionalProperties: false,
        },
      },
    };
    const TIME = {
      type: 'function' as const,
      function: { name: 'get_time', parameters: { type: 'object', properties: {} } },
    };

    it('a named tool_choice forces the call; its arguments validate against the schema; a full round trip', async () => {
      const validate = ajv.compile(WEATHER.function.parameters);
      const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Oslo?' }];
      const first = await client.chat.completions.create({
        model: 'tiny-tools',
        messages,
        tools: [WEATHER, TIME],
        tool_choice: { type: 'function', function: { name: 'get_weather' } },
        seed: 5,
      });
      const choice = first.choices[0];
      expect(choice.finish_reason).toBe('stop');
      expect(choice.message.content).toBeNull();
      const call = choice.message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
      expect(call).toMatchObject({ type: 'function', function: { name: 'get_weather' } });
      expect(call.id).toMatch(/^call_/);
      const args = JSON.parse(call.function.arguments) as unknown;
      expect({ args, valid: validate(args) }).toMatchObject({ valid: true });

      messages.push(choice.message, { role: 'tool', tool_call_id: call.id, content: '{"degrees": 21}' });
      const answer = await client.chat.completions.create({
        model: 'tiny-tools',
        messages,
        tools: [WEATHER, TIME],
        max_tokens: 8,
        seed: 5,
      });
      expect(answer.choices[0].message.content!.length).toBeGreaterThan(0);
      expect(['stop', 'length', 'tool_calls']).toContain(answer.choices[0].finish_reason);
    });

    it('the forced call streams as OpenAI tool-call chunks that the SDK reassembles', async () => {
      const params = {
        model: 'tiny-tools',
        messages: [{ role: 'user' as const, content: 'Weather?' }],
        tools: [WEATHER],
        tool_choice: 'required' as const,
        seed: 8,
      };
      const plain = await client.chat.completions.create(params, { headers: { 'Cache-Control': 'no-store' } });
      const streamed = await client.chat.completions
        .stream(params, { headers: { 'Cache-Control': 'no-store' } })
        .finalChatCompletion();
      const plainCall = plain.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
      const streamedCall = streamed.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
      expect(streamedCall.function).toEqual(plainCall.function);
    });

    it('the tools and the earlier call and result are in what the model reads (auto)', async () => {
      const res = await client.chat.completions.create({
        model: 'tiny-tools',
        messages: [{ role: 'user', content: 'Weather in Oslo?' }],
        tools: [WEATHER],
        max_tokens: 4,
        seed: 1,
      });
      // The random model does not start a call on its own: text, within max_tokens.
      expect(res.choices[0].finish_reason).toBe('length');
      // The tool's documentation costs prompt tokens: more than the same request without tools.
      const bare = await client.chat.completions.create({
        model: 'tiny-tools',
        messages: [{ role: 'user', content: 'Weather in Oslo?' }],
        max_tokens: 4,
        seed: 1,
      });
      expect(res.usage!.prompt_tokens).toBeGreaterThan(bare.usage!.prompt_tokens + 50);
    });

    it('required with several tools is a 400 naming tool_choice', async () => {
      const error = await client.chat.completions
        .create({
          model: 'tiny-tools',
          messages: [{ role: 'user', content: 'x' }],
          tools: [WEATHER, TIME],
          tool_choice: 'required',
        })
        .catch((e: unknown) => e);
      expect((error as APIError).param).toBe('tool_choice');
    });
  });
});
