/**
 * The embedded engine (the tiny random-weight GGUF the project generates) with OpenAI's
 * structured outputs: grammar-constrained decoding from the JSON schema makes even this model,
 * which knows no JSON, answer JSON that validates against the schema (checked with Ajv) for
 * several schemas, and parses with the SDK's parse(); json_object gives a JSON object. Tools are
 * refused with a clear 400 naming `tools`: the engine does not drive a function-calling format.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Ajv from 'ajv';
import OpenAI, { APIError } from 'openai';
import { startTestApp, type TestApp } from './harness/app';
import { describeInProcess } from './harness/environment';
import { createKey } from './harness/keys';
import { listenOnLoopback } from './harness/listen';

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
    const tinyPath = join(mkdtempSync(join(tmpdir(), 'llm-structured-')), 'tiny.gguf');
    app = await startTestApp({
      modelsYaml: `default_model: tiny
models:
  - name: tiny
    provider: llama-cpp
    model_path: ${tinyPath}
    generate_if_missing: true
    max_new_tokens: 512
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

  it('tools: a clear 400 invalid_request naming tools (the engine does no function calling)', async () => {
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
});
