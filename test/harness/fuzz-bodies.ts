/**
 * What the fuzz suite sends (test/fuzz.e2e-spec.ts): hostile JSON values, and for each /v1 route
 * a generator of valid requests per API.md (and the OpenAI reference), which the suite then
 * mutates one field at a time, so most cases pass validation and exercise the backend, cache,
 * coalescing, billing and streaming paths rather than stopping at a 400.
 */
import fc from 'fast-check';

/** Strings that have hurt servers: NUL, lone surrogates, huge, SQL, paths, format strings. */
export const hostileString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.constantFrom(
    '\u0000',
    'a\u0000b',
    '\ud800',
    '\udfff',
    "'; DROP TABLE users; --",
    "1' OR '1'='1",
    '../../etc/passwd',
    '%00',
    '%s%s%n',
    '0000-01-01',
    '9999-12-31T23:59:59Z',
    '+275760-09-13T00:00:00Z',
    '__proto__',
    'constructor',
    '-1',
    'NaN',
    'x'.repeat(70_000),
  ),
);

const hostileNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -1, 2 ** 31, 2 ** 53, -(2 ** 63), 1e308, Number.MIN_VALUE),
);

/** A JSON value: anything JSON can say, hostile strings and numbers included. */
export const jsonValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    hostileNumber,
    hostileString,
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(hostileString, tie('value'), { maxKeys: 5 }),
  ),
})).value;

/** Values at and just past the edges of what fields accept. */
const edgeValue = fc.constantFrom<unknown>(
  null,
  '',
  ' ',
  0,
  -1,
  1,
  0.5,
  2,
  2.0000001,
  1001,
  2 ** 31,
  1e9,
  '1',
  true,
  [],
  {},
  [''],
  ['a', 'b', 'c', 'd', 'e'],
  'x'.repeat(257),
);

const text = (maxLength: number) =>
  fc.oneof(fc.string({ minLength: 1, maxLength }), fc.string({ unit: 'grapheme', minLength: 1, maxLength }));

const sampling = {
  temperature: fc.double({ min: 0, max: 2, noNaN: true }),
  top_p: fc.double({ min: 0.01, max: 1, noNaN: true }),
  stop: fc.oneof(text(8), fc.array(text(8), { minLength: 1, maxLength: 4 })),
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  stream: fc.boolean(),
};

/** `stream_options` only means something on a stream: dropped otherwise, as a client would. */
function streamOptionsOnStreams<T extends { stream?: boolean; stream_options?: unknown }>(body: T): T {
  if (body.stream !== true) delete body.stream_options;
  return body;
}

const tool = fc.record({
  type: fc.constant('function'),
  function: fc.record(
    {
      name: fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,20}$/),
      description: text(40),
      parameters: fc.constant({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
    },
    { requiredKeys: ['name'] },
  ),
});

const message = fc.record({ role: fc.constantFrom('system', 'user', 'assistant'), content: text(80) });

/** Valid request bodies per route, on the chat models `chatModels` and embedding models `embeddingModels`. */
export function validBodies(
  chatModels: readonly string[],
  embeddingModels: readonly string[],
): Record<string, fc.Arbitrary<Record<string, unknown>>> {
  const model = fc.constantFrom(...chatModels);
  return {
    '/v1/generate': fc.record(
      {
        model,
        prompt: text(200),
        max_new_tokens: fc.integer({ min: 1, max: 16 }),
        top_k: fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 1000 })),
        ...sampling,
      },
      { requiredKeys: ['model', 'prompt'] },
    ),
    '/v1/completions': fc
      .record(
        {
          model,
          prompt: text(200),
          max_tokens: fc.integer({ min: 1, max: 16 }),
          stream_options: fc.record({ include_usage: fc.boolean() }),
          ...sampling,
        },
        { requiredKeys: ['model', 'prompt'] },
      )
      .map(streamOptionsOnStreams),
    '/v1/chat/completions': fc
      .record(
        {
          model,
          messages: fc
            .tuple(fc.array(message, { maxLength: 3 }), text(80))
            .map(([before, last]) => [...before, { role: 'user', content: last }]),
          max_tokens: fc.integer({ min: 1, max: 16 }),
          stream_options: fc.record({ include_usage: fc.boolean() }),
          tools: fc.array(tool, { minLength: 1, maxLength: 2 }),
          response_format: fc.constantFrom({ type: 'text' }, { type: 'json_object' }),
          ...sampling,
        },
        { requiredKeys: ['model', 'messages'] },
      )
      .map(streamOptionsOnStreams),
    '/v1/responses': fc.record(
      {
        model,
        input: fc.oneof(
          text(200),
          fc
            .tuple(fc.array(message, { maxLength: 3 }), text(80))
            .map(([before, last]) => [...before, { type: 'message', role: 'user', content: last }]),
        ),
        instructions: text(60),
        max_output_tokens: fc.integer({ min: 1, max: 100_000 }),
        tools: fc.array(
          tool.map(({ function: fn }) => ({ type: 'function', ...fn })),
          { minLength: 1, maxLength: 2 },
        ),
        text: fc.constantFrom({ format: { type: 'text' } }, { format: { type: 'json_object' } }),
        store: fc.boolean(),
        temperature: sampling.temperature,
        top_p: sampling.top_p,
        stream: sampling.stream,
      },
      { requiredKeys: ['model', 'input'] },
    ),
    '/v1/messages': fc.record(
      {
        model,
        max_tokens: fc.integer({ min: 1, max: 32_000 }),
        system: fc.oneof(
          text(60),
          fc.array(fc.record({ type: fc.constant('text'), text: text(40) }), { maxLength: 2 }),
        ),
        messages: fc
          .tuple(
            fc.array(
              message.filter((m) => m.role !== 'system'),
              { maxLength: 3 },
            ),
            text(80),
          )
          .map(([before, last]) => [...before, { role: 'user', content: last }]),
        tools: fc.array(
          tool.map(({ function: fn }) => ({ name: fn.name, description: fn.description, input_schema: fn.parameters })),
          { minLength: 1, maxLength: 2 },
        ),
        temperature: fc.double({ min: 0, max: 1, noNaN: true }),
        top_k: fc.integer({ min: 0, max: 100 }),
        stop_sequences: fc.array(
          text(8).filter((t) => t.length > 0),
          { maxLength: 4 },
        ),
        stream: sampling.stream,
      },
      { requiredKeys: ['model', 'max_tokens', 'messages'] },
    ),
    '/v1/embeddings': fc.record(
      {
        model: fc.constantFrom(...embeddingModels),
        input: fc.oneof(text(100), fc.array(text(60), { minLength: 1, maxLength: 4 })),
        encoding_format: fc.constantFrom('float', 'base64'),
        user: text(20),
      },
      { requiredKeys: ['model', 'input'] },
    ),
  };
}

/**
 * `valid` with one field changed: removed, set to an edge value, or to any JSON value. `fields`
 * are the route's known fields, so a field the valid body left out may be added too.
 */
export function mutatedOneField(
  valid: fc.Arbitrary<Record<string, unknown>>,
  fields: readonly string[],
): fc.Arbitrary<Record<string, unknown>> {
  return fc
    .tuple(
      valid,
      fc.constantFrom(...fields),
      fc.oneof(
        fc.constant({ remove: true as const }),
        edgeValue.map((value) => ({ value })),
        jsonValue.map((value) => ({ value })),
      ),
    )
    .map(([body, field, change]) => {
      const mutated = { ...body };
      if ('remove' in change) delete mutated[field];
      else mutated[field] = change.value;
      return mutated;
    });
}
