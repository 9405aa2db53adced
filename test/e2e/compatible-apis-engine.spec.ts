/**
 * /v1/messages and /v1/responses on the embedded engine (the tiny random-weight GGUF), with the
 * official clients: a message and a response, streamed and not (the SDKs rebuild the same
 * answer from the events); a JSON-schema format (grammar-constrained, so even this model
 * answers valid JSON); and, with the tool-aware chat template, a forced tool call with
 * schema-valid input and the round trip after its result.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import Ajv from 'ajv';
import OpenAI from 'openai';
import { TINY_TOOLS_CHAT_TEMPLATE, writeTinyModel } from '../../src/modules/gguf/tiny-model';
import { startTestApp, type TestApp } from '../harness/app';
import { describeInProcess } from '../harness/environment';
import { createKey } from '../harness/keys';
import { listenOnLoopback } from '../harness/listen';

const WEATHER_SCHEMA = {
  type: 'object',
  properties: { city: { type: 'string', maxLength: 8 }, unit: { enum: ['celsius', 'fahrenheit'] } },
  required: ['city', 'unit'],
  additionalProperties: false,
};

describeInProcess('Responses and Messages on the embedded engine', 'boots the in-process server', () => {
  let app: TestApp;
  let openai: OpenAI;
  let anthropic: Anthropic;
  const noStore = { headers: { 'Cache-Control': 'no-store' } };
  const validWeather = new Ajv({ strict: false }).compile(WEATHER_SCHEMA);

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llm-compatible-'));
    const toolsPath = join(dir, 'tiny-tools.gguf');
    writeTinyModel(toolsPath, 42, { chatTemplate: TINY_TOOLS_CHAT_TEMPLATE });
    app = await startTestApp({
      modelsYaml: `default_model: tiny
models:
  - name: tiny
    provider: llama-cpp
    model_path: ${join(dir, 'tiny.gguf')}
    generate_if_missing: true
    max_new_tokens: 256
  - name: tiny-tools
    provider: llama-cpp
    model_path: ${toolsPath}
    max_new_tokens: 256
    context_size: 4096
`,
    });
    const key = (await createKey(app, { rpm_limit: 100_000 })).key;
    const origin = await listenOnLoopback(app);
    openai = new OpenAI({ apiKey: key, baseURL: `${origin}/v1`, maxRetries: 0, timeout: 60_000 });
    anthropic = new Anthropic({ apiKey: key, baseURL: origin, maxRetries: 0, timeout: 60_000 });
  });
  afterAll(() => app.close());

  it('messages: create and stream give the same message; 32000 max_tokens is lowered to the model max', async () => {
    const params = {
      model: 'tiny',
      max_tokens: 32_000,
      messages: [{ role: 'user' as const, content: 'Hi' }],
      top_k: 1,
    };
    const plain = await anthropic.messages.create(params as Anthropic.MessageCreateParamsNonStreaming, noStore);
    expect(plain.stop_reason).toMatch(/^(end_turn|max_tokens)$/);
    expect(plain.usage.output_tokens).toBeLessThanOrEqual(256);
    const streamed = await anthropic.messages.stream(params as Anthropic.MessageStreamParams, noStore).finalMessage();
    expect(streamed.content).toEqual(plain.content);
    expect(streamed.usage).toEqual(plain.usage);
  });

  it('responses: create and stream give the same response', async () => {
    const params = { model: 'tiny', input: 'Hi', max_output_tokens: 24, temperature: 0, store: false };
    const plain = await openai.responses.create(params, noStore);
    expect(plain.status).toBe('incomplete');
    const streamed = await openai.responses.stream(params, noStore).finalResponse();
    expect(streamed.output_text).toBe(plain.output_text);
    expect(streamed.usage).toEqual(plain.usage);
  });

  it('responses text.format json_schema: responses.parse gives a value valid for the schema', async () => {
    const response = await openai.responses.parse(
      {
        model: 'tiny',
        input: 'Weather as JSON',
        store: false,
        text: { format: { type: 'json_schema', name: 'weather', schema: WEATHER_SCHEMA, strict: true } },
      },
      noStore,
    );
    expect(validWeather(response.output_parsed)).toBe(true);
  });

  it('messages: a forced tool call with schema-valid input, then the answer after its result', async () => {
    const tools = [{ name: 'get_weather', input_schema: WEATHER_SCHEMA as Anthropic.Tool.InputSchema }];
    const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'Weather in Oslo?' }];
    const first = await anthropic.messages.create({
      model: 'tiny-tools',
      max_tokens: 128,
      messages,
      tools,
      tool_choice: { type: 'tool', name: 'get_weather' },
    });
    expect(first.stop_reason).toBe('tool_use');
    const use = first.content.find((block) => block.type === 'tool_use') as Anthropic.ToolUseBlock;
    expect(validWeather(use.input)).toBe(true);
    messages.push(
      { role: 'assistant', content: first.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '21 degrees' }] },
    );
    const second = await anthropic.messages.create({ model: 'tiny-tools', max_tokens: 8, messages, tools });
    expect(second.content.length).toBeGreaterThan(0);
  });

  it('responses: a forced function call streamed, reassembled by the SDK', async () => {
    const response = await openai.responses
      .stream(
        {
          model: 'tiny-tools',
          input: 'Weather?',
          store: false,
          tools: [{ type: 'function', name: 'get_weather', parameters: WEATHER_SCHEMA, strict: true }],
          tool_choice: { type: 'function', name: 'get_weather' },
        },
        noStore,
      )
      .finalResponse();
    const call = response.output.find(
      (item) => item.type === 'function_call',
    ) as OpenAI.Responses.ResponseFunctionToolCall;
    expect(validWeather(JSON.parse(call.arguments))).toBe(true);
  });
});
