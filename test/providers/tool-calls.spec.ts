/**
 * The pieces behind tool calls and structured outputs that the e2e specs only see through HTTP:
 * joining streamed `delta.tool_calls` fragments (OpenAI's and vLLM's shapes: the first fragment
 * of a call has id, type and name, the next ones argument pieces; parallel calls interleave by
 * index), the mock's schema-valid values (checked with Ajv) and their bounds against hostile
 * schemas, and the mock's deterministic calls.
 */
import Ajv from 'ajv';
import { mockCompletion } from '../../src/modules/providers/mock-answers';
import { sampleForSchema } from '../../src/modules/providers/schema-sample';
import { ToolCallAssembler } from '../../src/modules/providers/tool-calls';
import { mulberry32 } from '../../src/contracts/prng';
import { BackendResponseError } from '../../src/contracts/backend-errors';
import { generationParams } from '../fakes/model-config';

describe('ToolCallAssembler', () => {
  it('joins fragments per index, in order, with the id and name of the first fragment', () => {
    const calls = new ToolCallAssembler();
    calls.add([{ index: 0, id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '' } }]);
    calls.add([{ index: 1, id: 'call_b', type: 'function', function: { name: 'get_time' } }]);
    calls.add([{ index: 0, function: { arguments: '{"city":' } }]);
    calls.add([{ index: 1, function: { arguments: '{"zone":"UTC"}' } }]);
    calls.add([{ index: 0, function: { arguments: '"Oslo"}' } }]);
    expect(calls.result()).toEqual([
      { id: 'call_a', name: 'get_weather', arguments: '{"city":"Oslo"}' },
      { id: 'call_b', name: 'get_time', arguments: '{"zone":"UTC"}' },
    ]);
    expect(calls.fragments).toBe(5);
  });

  it('generates an id when the server sends none; no arguments are "{}"', () => {
    const calls = new ToolCallAssembler();
    calls.add([{ index: 0, function: { name: 'ping' } }]);
    const [call] = calls.result();
    expect(call).toEqual({ id: expect.stringMatching(/^call_[A-Za-z0-9]{24}$/), name: 'ping', arguments: '{}' });
  });

  it.each([
    ['not a list', { index: 0 }],
    ['arguments as an object', [{ index: 0, function: { name: 'f', arguments: { a: 1 } } }]],
    ['a fragment that is not an object', ['x']],
  ])('garbage (%s) is a BackendResponseError', (_label, deltas) => {
    expect(() => new ToolCallAssembler().add(deltas)).toThrow(BackendResponseError);
  });

  it('a call that never got a name is garbage', () => {
    const calls = new ToolCallAssembler();
    calls.add([{ index: 0, function: { arguments: '{}' } }]);
    expect(() => calls.result()).toThrow(BackendResponseError);
  });
});

describe('sampleForSchema (the mock)', () => {
  const ajv = new Ajv({ strict: false });
  const schemas: Record<string, unknown>[] = [
    {
      type: 'object',
      properties: { a: { type: 'string' }, b: { type: 'integer', minimum: 3, maximum: 5 } },
      required: ['a', 'b'],
    },
    { type: 'array', items: { type: 'number' }, minItems: 2, maxItems: 4 },
    { enum: ['x', 'y', 3] },
    { type: ['null', 'boolean'] },
    { $defs: { p: { type: 'object', properties: { n: { const: 7 } } } }, $ref: '#/$defs/p' },
    { anyOf: [{ type: 'string', minLength: 5, maxLength: 9 }, { type: 'integer' }] },
    { allOf: [{ properties: { a: { type: 'boolean' } } }, { properties: { b: { type: 'null' } } }] },
  ];

  it.each(schemas.map((schema) => [JSON.stringify(schema), schema]))('%s: the value validates', (_label, schema) => {
    for (let seed = 0; seed < 20; seed += 1) {
      const value = sampleForSchema(schema as Record<string, unknown>, mulberry32(seed));
      expect({ value, valid: ajv.validate(schema as object, value) }).toMatchObject({ valid: true });
    }
  });

  it('stays small whatever a hostile schema asks', () => {
    let nested: Record<string, unknown> = { type: 'string', minLength: 1e9 };
    for (let i = 0; i < 40; i += 1) nested = { type: 'array', items: nested, minItems: 1e9 };
    const started = Date.now();
    const value = sampleForSchema(nested, mulberry32(1));
    expect(JSON.stringify(value).length).toBeLessThan(2_000_000);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('the mock with tools', () => {
  const weather = {
    name: 'get_weather',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  };
  const time = { name: 'get_time' };
  const params = (over: Partial<ReturnType<typeof generationParams>>) =>
    generationParams({ prompt: '', messages: [{ role: 'user', content: 'weather?' }], ...over });

  it('auto calls the first tool until a tool result comes back, then answers with text', () => {
    const first = mockCompletion(params({ tools: { tools: [weather, time], choice: 'auto', parallel: true } }));
    expect(first.finishReason).toBe('tool_calls');
    expect(first.toolCalls!.map((c) => c.name)).toEqual(['get_weather']);
    expect(first.output).toBe('');
    const call = first.toolCalls![0];
    const second = mockCompletion(
      params({
        messages: [
          { role: 'user', content: 'weather?' },
          { role: 'assistant', content: '', toolCalls: [call] },
          { role: 'tool', content: 'sunny', toolCallId: call.id },
        ],
        tools: { tools: [weather], choice: 'auto', parallel: true },
      }),
    );
    expect(second.toolCalls).toBeUndefined();
    expect(second.output.length).toBeGreaterThan(0);
  });

  it('[mock:parallel] calls every tool with distinct ids, unless parallel calls are off', () => {
    const messages = [{ role: 'user' as const, content: '[mock:parallel] both' }];
    const both = mockCompletion(
      params({ messages, tools: { tools: [weather, time], choice: 'required', parallel: true } }),
    );
    expect(both.toolCalls!.map((c) => c.name)).toEqual(['get_weather', 'get_time']);
    expect(new Set(both.toolCalls!.map((c) => c.id)).size).toBe(2);
    const one = mockCompletion(
      params({ messages, tools: { tools: [weather, time], choice: 'required', parallel: false } }),
    );
    expect(one.toolCalls).toHaveLength(1);
  });
});
